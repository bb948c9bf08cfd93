package hal

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Pagination defaults and limits shared by every collection.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Page is a 1-based page number and a page size.
type Page struct {
	Number int
	Size   int
}

// Offset returns the number of items before this page.
func (p Page) Offset() int { return (p.Number - 1) * p.Size }

// ParsePage reads ?page= (default 1, at least 1) and ?size= (default
// DefaultPageSize, 1..MaxPageSize) from q. A value that is not a number, out of
// range or repeated gives a 400 *problem.Problem naming the parameter.
func ParsePage(q url.Values) (Page, error) {
	p := Page{Number: 1, Size: DefaultPageSize}
	var errs problem.Fields
	read := func(name string, dst *int, lo, hi int) {
		vs, ok := q[name]
		if !ok {
			return
		}
		if len(vs) != 1 {
			errs.Add(name, "must be given once")
			return
		}
		n, err := strconv.Atoi(vs[0])
		if err != nil || n < lo || n > hi {
			errs.Add(name, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
			return
		}
		*dst = n
	}
	read("page", &p.Number, 1, 1_000_000)
	read("size", &p.Size, 1, MaxPageSize)
	if len(errs) > 0 {
		pr := problem.BadRequest("invalid pagination parameters")
		pr.Errors = errs
		return Page{}, pr
	}
	return p, nil
}

// LastPage returns the number of the last page for total items (at least 1).
func (p Page) LastPage(total int) int {
	if total <= 0 || p.Size <= 0 {
		return 1
	}
	return (total + p.Size - 1) / p.Size
}

// PageLinks returns self, first and last links for page p of a collection at
// href with total items, plus prev when p is not the first page and next when
// it is before the last. Every query parameter in filters except page and
// size is kept on each link, so filtered collections page through the
// same filter.
func PageLinks(href string, filters url.Values, p Page, total int) Links {
	last := p.LastPage(total)
	at := func(n int) string {
		q := url.Values{}
		for k, vs := range filters {
			if k != "page" && k != "size" {
				q[k] = append([]string(nil), vs...)
			}
		}
		q.Set("page", strconv.Itoa(n))
		q.Set("size", strconv.Itoa(p.Size))
		return href + "?" + q.Encode()
	}
	ls := Links{}
	ls.Set("self", at(p.Number))
	ls.Set("first", at(1))
	ls.Set("last", at(last))
	if p.Number > 1 {
		ls.Set("prev", at(min(p.Number-1, last)))
	}
	if p.Number < last {
		ls.Set("next", at(p.Number+1))
	}
	return ls
}

// Collection is a page of a collection resource: the page's items under
// _embedded[rel], pagination links, and counts.
type Collection[T any] struct {
	Links    Links          `json:"_links"`
	Embedded map[string][]T `json:"_embedded"`
	Page     int            `json:"page"`
	Size     int            `json:"size"`
	Total    int            `json:"total"`
}

// NewCollection builds page p of the collection at href (absolute, without
// query) whose items are embedded under rel. filters are the request's query
// parameters to keep on the links. items may be nil (rendered as []).
// Callers may add more links (templated search links, up) to the result.
func NewCollection[T any](rel, href string, filters url.Values, items []T, p Page, total int) Collection[T] {
	if items == nil {
		items = []T{}
	}
	return Collection[T]{
		Links:    PageLinks(href, filters, p, total),
		Embedded: map[string][]T{rel: items},
		Page:     p.Number,
		Size:     p.Size,
		Total:    total,
	}
}

// Find returns the templated search link (RFC 6570) of the collection at
// href with the query parameters params: href{?p1,p2,…}. Every service
// publishes it under the relation find-<collection> (find-orders,
// find-stock-items) on its API root and on the collection itself.
func Find(href string, params ...string) Link {
	return Link{Href: href + "{?" + strings.Join(params, ",") + "}", Templated: true}
}

// Searchable adds to a collection's links the relations every searchable
// collection carries besides its pages: up (the API root at root) and
// find-<rel> (Find(href, params…)).
func (c Collection[T]) Searchable(root, rel, href string, params ...string) Collection[T] {
	c.Links.Set("up", root)
	c.Links.SetLink("find-"+rel, Find(href, params...))
	return c
}
