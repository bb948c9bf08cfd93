package portal

import (
	"bytes"
	"fmt"
	"html"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
)

// palette colours the services of the choreography map, in order.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"}

// Map layout, in pixels.
const (
	mapWidth     = 1120
	serviceWidth = 210
	eventX       = 400
	eventWidth   = 320
	consumerX    = mapWidth - serviceWidth - 20
	rowHeight    = 26
	groupGap     = 14
	top          = 90
)

// Map renders the choreography of c as an SVG picture: every service on the
// left with the events it publishes (middle), and an arrow from each event to
// every service that consumes it (right). Events nobody consumes are drawn
// dashed. The output depends only on c.
func Map(c *catalog.Catalog) []byte {
	colour := map[string]string{}
	for i, s := range c.Services {
		colour[s.Name] = palette[i%len(palette)]
	}
	type row struct {
		e catalog.Event
		y int
	}
	// Events grouped by publisher, in service order.
	var rows []row
	groups := map[string][2]int{} // publisher -> first, last y
	y := top
	for _, s := range c.Services {
		first := y
		n := 0
		for _, e := range c.Events {
			if e.Publisher == s.Name {
				rows = append(rows, row{e, y})
				y += rowHeight
				n++
			}
		}
		if n > 0 {
			groups[s.Name] = [2]int{first, y - rowHeight}
			y += groupGap
		}
	}
	for _, e := range c.Events { // consumed but published by nobody
		if e.Publisher == "" {
			rows = append(rows, row{e, y})
			y += rowHeight
		}
	}
	height := y + 40

	// Consumers on the right, spread over the height of the event rows.
	consumerY := map[string]int{}
	span := y - top - groupGap
	n := len(c.Services)
	for i, s := range c.Services {
		consumerY[s.Name] = top + (span*(2*i+1))/(2*max(n, 1)) - 18
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="13">`+"\n", mapWidth, height, mapWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", mapWidth, height)
	fmt.Fprintf(&b, `<text x="20" y="30" font-size="20" font-weight="bold">Sagittarius choreography</text>`+"\n")
	fmt.Fprintf(&b, `<text x="20" y="52" fill="#555">Every event goes to the fanout exchange sagittarius-a; an arrow means the service on the right handles it. Generated from contracts/asyncapi by scripts/contracts.</text>`+"\n")
	fmt.Fprintf(&b, `<text x="20" y="78" font-weight="bold" fill="#333">publisher</text><text x="%d" y="78" font-weight="bold" fill="#333">event (type property)</text><text x="%d" y="78" font-weight="bold" fill="#333">consumer</text>`+"\n", eventX, consumerX)
	b.WriteString(`<defs>`)
	for _, s := range c.Services {
		fmt.Fprintf(&b, `<marker id="arrow-%s" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="%s"/></marker>`, id(s.Name), colour[s.Name])
	}
	b.WriteString("</defs>\n")

	// Edges first, boxes on top.
	for _, r := range rows {
		cy := r.y + 10
		if g, ok := groups[r.e.Publisher]; ok {
			py := (g[0]+g[1])/2 + 10
			fmt.Fprintf(&b, `<path d="M %d %d C %d %d, %d %d, %d %d" fill="none" stroke="%s" stroke-width="1.5" opacity="0.8"/>`+"\n",
				20+serviceWidth, py, 20+serviceWidth+80, py, eventX-80, cy, eventX, cy, colour[r.e.Publisher])
		}
		for _, cons := range r.e.Consumers {
			ty := consumerY[cons] + 18
			fmt.Fprintf(&b, `<path d="M %d %d C %d %d, %d %d, %d %d" fill="none" stroke="%s" stroke-width="1.5" opacity="0.75" marker-end="url(#arrow-%s)"><title>%s</title></path>`+"\n",
				eventX+eventWidth, cy, eventX+eventWidth+90, cy, consumerX-90, ty, consumerX-2, ty, colour[r.e.Publisher], id(r.e.Publisher),
				esc(r.e.Type+" → "+cons))
		}
	}
	// Publishers.
	for _, s := range c.Services {
		g, ok := groups[s.Name]
		if !ok {
			continue
		}
		h := g[1] - g[0] + 20
		fmt.Fprintf(&b, `<rect x="20" y="%d" width="%d" height="%d" rx="6" fill="%s" fill-opacity="0.12" stroke="%s"/>`+"\n", g[0], serviceWidth, h, colour[s.Name], colour[s.Name])
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-weight="bold" fill="%s">%s</text>`+"\n", 20+serviceWidth/2, g[0]+h/2+5, colour[s.Name], esc(s.Name))
	}
	// Events.
	for _, r := range rows {
		dash, col := "", colour[r.e.Publisher]
		if col == "" {
			col = "#999999"
		}
		if len(r.e.Consumers) == 0 {
			dash = ` stroke-dasharray="4 3"`
		}
		fmt.Fprintf(&b, `<g><title>%s</title><rect x="%d" y="%d" width="%d" height="20" rx="4" fill="#ffffff" stroke="%s"%s/>`, esc(eventTitle(r.e)), eventX, r.y, eventWidth, col, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#222">%s</text></g>`+"\n", eventX+8, r.y+15, esc(r.e.Name))
	}
	// Consumers.
	for _, s := range c.Services {
		y := consumerY[s.Name]
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="36" rx="6" fill="%s" fill-opacity="0.12" stroke="%s"/>`+"\n", consumerX, y, serviceWidth, colour[s.Name], colour[s.Name])
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-weight="bold" fill="%s">%s</text>`+"\n", consumerX+serviceWidth/2, y+23, colour[s.Name], esc(s.Name))
	}
	fmt.Fprintf(&b, `<text x="20" y="%d" fill="#777">dashed: no service consumes the event (yet); hover an event or an arrow for its type.</text>`+"\n", height-14)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func eventTitle(e catalog.Event) string {
	cons := strings.Join(e.Consumers, ", ")
	if cons == "" {
		cons = "nobody"
	}
	pub := e.Publisher
	if pub == "" {
		pub = "nobody"
	}
	return fmt.Sprintf("%s: published by %s, consumed by %s", e.Type, pub, cons)
}

func id(s string) string { return strings.NewReplacer(".", "-", "_", "-").Replace(s) }

func esc(s string) string { return html.EscapeString(s) }
