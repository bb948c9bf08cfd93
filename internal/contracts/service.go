package contracts

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// Events is what the AsyncAPI manifest is generated from: the event types a
// service registered with its bus. *eventbus.Bus implements it; call it after
// every Publishes, Handle and HandleTx.
type Events interface {
	Published() []eventbus.EventInfo
	Consumed() []eventbus.EventInfo
}

// Service describes one process of the platform for its manifests.
type Service struct {
	// Dir is the service's directory under services/, its gateway prefix
	// (/orders) and the name of its manifest files (orders.yaml).
	Dir string
	// Name is the service, queue and app_id name (sales.orders); for a
	// process without a queue (the gateway), a plain word.
	Name string
	// Title and Description are for people (the manifests' info).
	Title, Description string
	// Routes is the service's route table (its httpapi Table), without the
	// contract routes that Mount adds.
	Routes []Route
	// Events is the service's bus; nil for a process without one: it then
	// has no AsyncAPI manifest. A service with a bus has a database, so every
	// operation of its OpenAPI manifest documents 503 (see hasDatabase).
	Events Events
	// Prefix is where the gateway serves this API: default "/" + Dir; "/"
	// for the gateway itself.
	Prefix string
	// OmitContractRoutes leaves the routes of ContractsPath out of the
	// OpenAPI manifest, for a process that does not Mount them (the gateway:
	// the portal serves its manifest).
	OmitContractRoutes bool
}

// hasDatabase reports whether s has a database: on this platform, exactly
// the services with a bus (their outbox and inbox are tables of it;
// scripts/services.conf: no queue, no database). Every operation of such a
// service documents 503 (problem+json): its API answers 503 while the
// database does not answer.
func (s Service) hasDatabase() bool { return s.Events != nil }

// prefix returns where the gateway serves s's API.
func (s Service) prefix() string {
	if s.Prefix != "" {
		return s.Prefix
	}
	return "/" + s.Dir
}

// Manifests are the generated contract documents of one service, as
// indented JSON with a stable key order.
type Manifests struct {
	OpenAPI  []byte
	AsyncAPI []byte // nil when the service has no bus
}

var dirRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// Validate reports what is missing or malformed in s.
func (s Service) Validate() error {
	var errs []error
	if !dirRE.MatchString(s.Dir) {
		errs = append(errs, fmt.Errorf("contracts: Service.Dir %q: want a lower-case-with-dashes directory name", s.Dir))
	}
	if s.Events != nil {
		if err := eventbus.ValidateServiceName(s.Name); err != nil {
			errs = append(errs, fmt.Errorf("contracts: Service.Name: %w", err))
		}
	} else if s.Name == "" {
		errs = append(errs, errors.New("contracts: Service.Name is required"))
	}
	if s.Title == "" {
		errs = append(errs, errors.New("contracts: Service.Title is required"))
	}
	ids := map[string]string{}
	patterns := map[string]bool{}
	for _, r := range s.Routes {
		if r.ID == "" || r.Summary == "" {
			errs = append(errs, fmt.Errorf("contracts: route %s needs an ID and a Summary", r.Pattern()))
		}
		if prev, dup := ids[r.ID]; dup && r.ID != "" {
			errs = append(errs, fmt.Errorf("contracts: routes %s and %s share the operation id %q", prev, r.Pattern(), r.ID))
		}
		ids[r.ID] = r.Pattern()
		if patterns[r.Pattern()] {
			errs = append(errs, fmt.Errorf("contracts: route %s is listed twice", r.Pattern()))
		}
		patterns[r.Pattern()] = true
		if r.Auth == nil {
			errs = append(errs, fmt.Errorf("contracts: route %s declares no access requirement (Route.Auth: auth.Anyone(), auth.AnyOf(...))", r.Pattern()))
		}
		if len(r.Responses) == 0 {
			errs = append(errs, fmt.Errorf("contracts: route %s documents no successful response", r.Pattern()))
		}
	}
	return errors.Join(errs...)
}

// Generate builds the manifests of s: OpenAPI 3.0 from its routes and
// AsyncAPI 2.6 from its events. The output depends only on s (and the Go
// types it references), so regenerating gives byte-identical documents.
func Generate(s Service) (Manifests, error) {
	if err := s.Validate(); err != nil {
		return Manifests{}, err
	}
	var m Manifests
	var err error
	if m.OpenAPI, err = openAPI(s); err != nil {
		return Manifests{}, fmt.Errorf("contracts: %s: OpenAPI: %w", s.Dir, err)
	}
	if s.Events != nil {
		if m.AsyncAPI, err = asyncAPI(s); err != nil {
			return Manifests{}, fmt.Errorf("contracts: %s: AsyncAPI: %w", s.Dir, err)
		}
	}
	return m, nil
}
