package portal

import "html/template"

const style = `<style>
body{font-family:Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1180px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;width:100%;margin:1rem 0} th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
code,pre{font-family:Menlo,Consolas,monospace;font-size:.85rem} pre{background:#f6f8fa;padding:.8rem;overflow:auto;max-height:28rem}
a{color:#0b5cad} .event{border:1px solid #ddd;border-radius:6px;padding:.2rem 1rem;margin:1rem 0} .none{color:#999}
nav a{margin-right:1rem}
</style>`

var funcs = template.FuncMap{"dirOf": dirOf}

var indexTemplate = template.Must(template.New("index").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sagittarius developer portal</title>` + style + `</head><body>
<h1>Sagittarius developer portal</h1>
<p class="sub">API reference, event catalog and choreography, generated from the contract manifests (contracts/ in the repository).</p>
<nav><a href="{{.Prefix}}/events/">Event catalog</a><a href="{{.Prefix}}/choreography.svg">Choreography map (SVG)</a><a href="/">API root (HAL)</a><a href="/console/">Operations console</a></nav>
<h2>APIs</h2>
<table><tr><th>service</th><th>API reference</th><th>manifests</th><th>publishes</th><th>consumes</th></tr>
{{range .APIs}}<tr><td><b>{{.Title}}</b><br><code>/{{.Dir}}</code>{{if .Name}} · queue <code>{{.Name}}</code>{{end}}</td>
<td><a href="{{$.Prefix}}/apis/{{.Dir}}/">Swagger UI</a></td>
<td><a href="{{$.Prefix}}/apis/{{.Dir}}/openapi.json">OpenAPI 3.0</a>{{if .AsyncAPI}} · <a href="{{$.Prefix}}/apis/{{.Dir}}/asyncapi.json">AsyncAPI 2.6</a>{{end}}</td>
{{$name := .Name}}<td>{{range $.Catalog.Services}}{{if eq .Name $name}}{{len .Publishes}} events{{end}}{{end}}</td>
<td>{{range $.Catalog.Services}}{{if eq .Name $name}}{{len .Consumes}} events{{end}}{{end}}</td></tr>
{{end}}</table>
<h2>Choreography</h2>
<p>Who publishes which event, and who reacts to it. Nobody calls another service's API to do its work.</p>
<p><img src="{{.Prefix}}/choreography.svg" alt="choreography map" style="max-width:100%"></p>
</body></html>
`))

var eventsTemplate = template.Must(template.New("events").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sagittarius event catalog</title>` + style + `</head><body>
<h1>Event catalog</h1>
<p class="sub">Every integration event on the fanout exchange <code>sagittarius-a</code>: its publisher, its consumers, its payload schema and an example.
AMQP properties of every event: <code>type</code> = the event type, <code>app_id</code> = the publisher, <code>message_id</code> = the payload's <code>uuid</code>,
<code>delivery_mode</code> 2, <code>content_type</code> application/json; headers <code>correlation_id</code>, <code>causation_id</code>, <code>traceparent</code>.</p>
<nav><a href="{{.Prefix}}/">Portal</a><a href="{{.Prefix}}/choreography.svg">Choreography map</a></nav>
<table><tr><th>event</th><th>publisher</th><th>consumers</th></tr>
{{range .Events}}<tr><td><a href="#{{.Anchor}}"><code>{{.Type}}</code></a></td><td>{{.Publisher}}</td><td>{{range $i, $c := .Consumers}}{{if $i}}, {{end}}{{$c}}{{else}}<span class="none">none</span>{{end}}</td></tr>
{{end}}</table>
{{range .Events}}<div class="event" id="{{.Anchor}}">
<h2><code>{{.Type}}</code></h2>
<p>{{.Summary}}</p>
<table>
<tr><th>publisher</th><td>{{if .Publisher}}<a href="{{$.Prefix}}/apis/{{dirOf $.APIs .Publisher}}/asyncapi.json">{{.Publisher}}</a>{{else}}<span class="none">no manifest publishes it</span>{{end}}</td></tr>
<tr><th>consumers</th><td>{{range $i, $c := .Consumers}}{{if $i}}, {{end}}<a href="{{$.Prefix}}/apis/{{dirOf $.APIs $c}}/asyncapi.json">{{$c}}</a>{{else}}<span class="none">none yet</span>{{end}}</td></tr>
<tr><th>entity key</th><td><code>{{.EntityKey}}</code></td></tr>
</table>
<details open><summary>Example payload</summary><pre>{{.Sample}}</pre></details>
<details><summary>Payload schema (JSON Schema, with the named schemas it uses)</summary><pre>{{.Schema}}</pre></details>
</div>
{{end}}
</body></html>
`))
