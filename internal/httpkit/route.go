package httpkit

import (
	"context"
	"net/http"
)

type routeKey struct{}

// WithRouteRecorder returns a context in which the Router (or any handler
// calling SetRoute) records the route template of the request it serves,
// and a function returning it: "" when no route matched. Metrics and
// tracing middleware use it to label requests by template
// ("/v1/orders/{id}"), never by raw path.
func WithRouteRecorder(ctx context.Context) (context.Context, func() string) {
	var route string
	return context.WithValue(ctx, routeKey{}, &route), func() string { return route }
}

// SetRoute records route as the template of r's route, if r's context came
// from WithRouteRecorder. The Router calls it for every path it matches;
// handlers that route by themselves (the gateway) call it too.
func SetRoute(r *http.Request, route string) {
	if p, ok := r.Context().Value(routeKey{}).(*string); ok {
		*p = route
	}
}
