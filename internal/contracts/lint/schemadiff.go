package lint

import (
	"fmt"
	"sort"
	"strings"
)

// direction says whose side of a schema the other party is on.
type direction int

const (
	// output: the service writes values of the schema (responses, events);
	// a change is breaking when a value valid under the new schema may be
	// unexpected by a reader of the old one.
	output direction = iota
	// input: the service reads values of the schema (request bodies,
	// parameters); a change is breaking when a value valid under the old
	// schema may be refused by the new one.
	input
)

// schemaDiff compares two JSON Schemas (generic JSON, local $refs resolved
// against their own document's named schemas) and lists the breaking
// changes, each prefixed with its location (a JSON pointer into the value).
type schemaDiff struct {
	oldDefs, newDefs map[string]any
	dir              direction
	seen             map[string]bool
	out              []string
}

// diffSchemas returns the breaking changes from old to new.
func diffSchemas(old, new any, oldDefs, newDefs map[string]any, dir direction) []string {
	d := &schemaDiff{oldDefs: oldDefs, newDefs: newDefs, dir: dir, seen: map[string]bool{}}
	d.walk(old, new, "")
	sort.Strings(d.out)
	return d.out
}

func (d *schemaDiff) add(at, format string, args ...any) {
	if at == "" {
		at = "/"
	}
	d.out = append(d.out, at+": "+fmt.Sprintf(format, args...))
}

// resolve follows $ref chains in defs.
func resolve(s any, defs map[string]any) (map[string]any, string) {
	name := ""
	for i := 0; i < 16; i++ {
		m, _ := s.(map[string]any)
		if m == nil {
			return nil, name
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, name
		}
		name = ref[strings.LastIndex(ref, "/")+1:]
		s = defs[name]
	}
	return nil, name
}

func (d *schemaDiff) walk(oldS, newS any, at string) {
	o, on := resolve(oldS, d.oldDefs)
	n, nn := resolve(newS, d.newDefs)
	if on != "" && nn != "" {
		if d.seen[on+"|"+nn] {
			return // a named (possibly recursive) type already compared
		}
		d.seen[on+"|"+nn] = true
	}
	if o == nil || n == nil {
		if o != nil && n == nil && d.dir == output {
			d.add(at, "schema removed")
		}
		return
	}
	ot, nt := types(o), types(n)
	if len(ot) > 0 && len(nt) > 0 {
		if d.dir == output {
			for t := range nt {
				if !ot[t] && !(t == "integer" && ot["number"]) {
					d.add(at, "type changed from %s to %s: readers may now get %s", list(ot), list(nt), t)
					break
				}
			}
		} else {
			for t := range ot {
				if !nt[t] && !(t == "integer" && nt["number"]) {
					d.add(at, "type changed from %s to %s: %s is no longer accepted", list(ot), list(nt), t)
					break
				}
			}
		}
	}
	if of, nf := str(o["format"]), str(n["format"]); of != nf && of != "" && nf != "" {
		d.add(at, "format changed from %s to %s", of, nf)
	}
	if oe, ne := enumSet(o), enumSet(n); oe != nil && ne != nil {
		if d.dir == output {
			for v := range ne {
				if !oe[v] {
					d.add(at, "new enum value %s: readers of the old contract do not expect it", v)
				}
			}
		} else {
			for v := range oe {
				if !ne[v] {
					d.add(at, "enum value %s is no longer accepted", v)
				}
			}
		}
	}
	oProps, _ := o["properties"].(map[string]any)
	nProps, _ := n["properties"].(map[string]any)
	oReq, nReq := stringSet(o["required"]), stringSet(n["required"])
	names := make([]string, 0, len(oProps))
	for k := range oProps {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := at + "/" + k
		np, ok := nProps[k]
		if !ok {
			if d.dir == output {
				d.add(p, "field removed")
			} else if nProps != nil || n["additionalProperties"] == false {
				d.add(p, "field no longer accepted (the decoder refuses unknown fields)")
			}
			continue
		}
		if d.dir == output && oReq[k] && !nReq[k] {
			d.add(p, "field no longer always present (it was required)")
		}
		d.walk(oProps[k], np, p)
	}
	if d.dir == input {
		for k := range nReq {
			if !oReq[k] {
				d.add(at+"/"+k, "field now required")
			}
		}
	}
	if oi, ok := o["items"]; ok {
		if ni, ok := n["items"]; ok {
			d.walk(oi, ni, at+"/items")
		}
	}
	if oa, ok := o["additionalProperties"].(map[string]any); ok {
		if na, ok := n["additionalProperties"].(map[string]any); ok {
			d.walk(oa, na, at+"/*")
		}
	}
}

// types returns the set of JSON types a schema allows ("null" included when
// nullable), or nil when it does not say.
func types(s map[string]any) map[string]bool {
	set := map[string]bool{}
	switch t := s["type"].(type) {
	case string:
		set[t] = true
	case []any:
		for _, v := range t {
			set[str(v)] = true
		}
	}
	if len(set) == 0 {
		if _, ok := s["properties"]; ok {
			set["object"] = true
		}
	}
	if len(set) == 0 {
		return nil
	}
	if s["nullable"] == true {
		set["null"] = true
	}
	return set
}

func list(set map[string]bool) string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, "|")
}

func enumSet(s map[string]any) map[string]bool {
	vs, ok := s["enum"].([]any)
	if !ok {
		return nil
	}
	set := map[string]bool{}
	for _, v := range vs {
		set[fmt.Sprint(v)] = true
	}
	return set
}

func stringSet(v any) map[string]bool {
	set := map[string]bool{}
	vs, _ := v.([]any)
	for _, x := range vs {
		set[str(x)] = true
	}
	return set
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
