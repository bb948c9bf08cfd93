package portal

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed console
var consoleFiles embed.FS

// ConsolePath is where the gateway serves the operations console.
const ConsolePath = "/console/"

// Console returns the operations console, a static page (HTML, CSS and
// JavaScript embedded in the binary; no CDN) served by the gateway under
// /console/ next to the developer portal. It calls only the platform's
// public HAL APIs through the gateway: stuck journeys first, then every
// service's failed-message groups, then the recent journeys and one
// journey's timeline. GET /console redirects to /console/.
//
// Its answers forbid everything but the gateway's own origin
// (Content-Security-Policy), framing, and caching without revalidation. The
// handler is safe for concurrent use.
func Console() http.Handler {
	sub, _ := fs.Sub(consoleFiles, "console") // the directory is embedded: cannot fail
	files := http.StripPrefix("/console", http.FileServerFS(sub))
	mux := http.NewServeMux()
	mux.Handle("GET /console", http.RedirectHandler(ConsolePath, http.StatusMovedPermanently))
	mux.Handle("GET "+ConsolePath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	return mux
}
