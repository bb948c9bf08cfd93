package lint

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

var (
	versionRE  = regexp.MustCompile(`^v[0-9]+$`)
	resourceRE = regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	paramRE    = regexp.MustCompile(`^\{[a-z][a-z0-9_]*\}$`)
)

// OperationalPaths are paths outside the versioned API that the resource
// naming rules do not apply to: the health check of every process, and the
// gateway's root.
var OperationalPaths = map[string]bool{"/": true, "/health": true}

// verbs are words that make a path segment an action instead of a noun.
var verbs = map[string]bool{
	"get": true, "set": true, "put": true, "post": true, "create": true, "add": true, "update": true, "edit": true,
	"delete": true, "remove": true, "list": true, "find": true, "search": true, "fetch": true, "query": true,
	"place": true, "cancel": true, "confirm": true, "approve": true, "reject": true, "send": true, "do": true,
	"make": true, "run": true, "start": true, "stop": true, "process": true, "execute": true, "register": true,
	"reserve": true, "release": true, "charge": true, "refund": true, "ship": true, "dispatch": true, "deliver": true,
	"replenish": true, "retire": true, "validate": true, "check": true, "calculate": true, "compute": true,
	"login": true, "logout": true, "sync": true, "import": true, "export": true, "upload": true, "download": true,
}

// singularS lists nouns that end in s but are singular (a segment must be
// plural).
var singularS = map[string]bool{
	"status": true, "address": true, "business": true, "access": true, "process": true, "class": true,
	"analysis": true, "basis": true, "canvas": true, "bus": true, "alias": true, "news": true, "series": true,
	"species": true, "gas": true, "progress": true, "success": true, "loss": true, "boss": true,
}

// ResourcePath checks an API path (a pattern such as
// /v1/orders/{id}, or a concrete path) against the guideline's resource
// naming rules: a version segment first, then resources that are plural
// English nouns in lower-case-with-dashes, never verbs, alternating with
// item identifiers, no deeper than collection/item/collection. Concrete
// identifiers are recognised when itemSegments is true (any segment in an
// item position is then accepted). It returns one message per broken rule.
func ResourcePath(path string, itemSegments bool) []string {
	if OperationalPaths[path] {
		return nil
	}
	var errs []string
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) > 0 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1] // a trailing slash
	}
	if len(segs) == 0 || !versionRE.MatchString(segs[0]) {
		return []string{fmt.Sprintf("path %s does not start with a version segment such as /v1", path)}
	}
	res := segs[1:]
	if len(res) > 3 {
		errs = append(errs, fmt.Sprintf("path %s is deeper than collection/item/collection (%d segments after the version)", path, len(res)))
	}
	for i, s := range res {
		if i%2 == 1 { // an item position
			if paramRE.MatchString(s) || itemSegments {
				continue
			}
			errs = append(errs, fmt.Sprintf("path %s: segment %d %q should be an item identifier like {id}", path, i+2, s))
			continue
		}
		if strings.HasPrefix(s, "{") {
			errs = append(errs, fmt.Sprintf("path %s: parameter %s where a collection name is expected", path, s))
			continue
		}
		errs = append(errs, ResourceName(s)...)
	}
	return errs
}

// ResourceName checks one collection name: a plural English noun (or
// nouns) in lower-case-with-dashes, no verb.
func ResourceName(s string) []string {
	var errs []string
	if !resourceRE.MatchString(s) {
		errs = append(errs, fmt.Sprintf("resource %q is not lower-case-with-dashes (letters only, words joined by -)", s))
		return errs
	}
	words := strings.Split(s, "-")
	for _, w := range words {
		if verbs[w] {
			errs = append(errs, fmt.Sprintf("resource %q contains the verb %q: resources are nouns, the HTTP method is the verb", s, w))
		}
	}
	last := words[len(words)-1]
	if !plural(last) {
		errs = append(errs, fmt.Sprintf("resource %q is not plural (e.g. %s)", s, pluralOf(s)))
	}
	return errs
}

func plural(w string) bool {
	if singularS[w] {
		return false
	}
	return strings.HasSuffix(w, "s") && len(w) > 2 && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is")
}

func pluralOf(s string) string {
	switch {
	case strings.HasSuffix(s, "y") && !strings.HasSuffix(s, "ey") && !strings.HasSuffix(s, "ay"):
		return strings.TrimSuffix(s, "y") + "ies"
	case strings.HasSuffix(s, "s"), strings.HasSuffix(s, "x"), strings.HasSuffix(s, "ch"), strings.HasSuffix(s, "sh"):
		return s + "es"
	}
	return s + "s"
}

// QueueName checks a queue name of a service's topology: the service name
// itself (domain-name.subdomain-name), or one of the bus's own queues
// derived from it (S.retry.<ms>, S.dead-letter). It returns the service the
// queue belongs to.
func QueueName(q string) (service string, err error) {
	if err := eventbus.ValidateServiceName(q); err == nil {
		return q, nil
	}
	if s, ok := strings.CutSuffix(q, ".dead-letter"); ok {
		return s, eventbus.ValidateServiceName(s)
	}
	if i := strings.LastIndex(q, ".retry."); i > 0 {
		if _, err := strconv.Atoi(q[i+len(".retry."):]); err == nil {
			return q[:i], eventbus.ValidateServiceName(q[:i])
		}
	}
	if q != strings.ToLower(q) {
		return "", fmt.Errorf("queue %q is not lowercase", q)
	}
	return "", fmt.Errorf("queue %q is neither a service queue (domain-name.subdomain-name) nor one of its retry (S.retry.<ms>) or dead-letter (S.dead-letter) queues", q)
}

// EventType checks a message type property: domain-name.subdomain-name.event_name.
// It returns the service and the event name.
func EventType(t string) (service, name string, err error) {
	i := strings.LastIndex(t, ".")
	if i < 0 {
		return "", "", fmt.Errorf("type %q: want domain-name.subdomain-name.event_name", t)
	}
	service, name = t[:i], t[i+1:]
	if err := eventbus.ValidateServiceName(service); err != nil {
		return service, name, fmt.Errorf("type %q: %w", t, err)
	}
	if err := eventbus.ValidateEventName(name); err != nil {
		return service, name, fmt.Errorf("type %q: %w", t, err)
	}
	return service, name, nil
}
