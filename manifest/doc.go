// Package manifest provides facilities for reading kiln's build manifests
// into [Build], the intermediate representation that package dag compiles
// into a graph.
//
// A manifest is YAML in two documents: an optional first one declaring
// defaults for template variables (read as is), and a second one rendered
// as a pongo2 (Jinja2 syntax) template with defaults < --values files <
// --set values, then decoded strictly. Every error names the file, line
// and column the user wrote.
package manifest
