// Command markergen writes internal/openapi's table of the comment markers
// of the k8s.io/api types: +listType, +listMapKey, +mapType, +structType,
// +optional/+required and +enum with its constants. Those markers live in
// Go comments, which reflection cannot see, and they carry what OpenAPI
// clients rely on (server-side apply's list and map semantics, which fields
// are required, the values of enums). Run through `go generate` in
// internal/openapi; the arguments are the import paths to scan.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type fieldMarker struct {
	listType, mapType, structType string
	listMapKeys                   []string
	optional, required            bool
}

type typeMarker struct{ mapType string }

type enumValue struct{ value, comment string }

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: markergen OUTPUT IMPORTPATH...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "markergen:", err)
		os.Exit(1)
	}
}

func run(output string, pkgs []string) error {
	fields := map[string]fieldMarker{}
	types := map[string]typeMarker{}
	enums := map[string][]enumValue{}
	docs := map[string]string{}
	for _, pkg := range pkgs {
		dir, err := exec.Command("go", "list", "-f", "{{.Dir}}", pkg).Output()
		if err != nil {
			return fmt.Errorf("locating %s: %w", pkg, err)
		}
		if err := scan(pkg, strings.TrimSpace(string(dir)), fields, types, enums, docs); err != nil {
			return fmt.Errorf("scanning %s: %w", pkg, err)
		}
	}
	src, err := render(fields, types, enums, docs)
	if err != nil {
		return err
	}
	return os.WriteFile(output, src, 0o644)
}

// scan reads one package. Besides markers it keeps the doc comment of
// each struct type without a SwaggerDoc method and of each type with an
// OpenAPISchemaType method (Time, Quantity, IntOrString, RawExtension...):
// apimachinery generates no SwaggerDoc for those.
func scan(pkg, dir string, fields map[string]fieldMarker, types map[string]typeMarker, enums map[string][]enumValue, docs map[string]string) error {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var files []*ast.File
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") || strings.HasPrefix(n, "zz_generated") || strings.HasPrefix(n, "generated.") {
			continue
		}
		f, err := parser.ParseFile(fset, dir+"/"+n, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	enumTypes := map[string]bool{}
	methods := map[string]map[string]bool{} // type -> method names
	for _, f := range files {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			rt := fd.Recv.List[0].Type
			if s, ok := rt.(*ast.StarExpr); ok {
				rt = s.X
			}
			if id, ok := rt.(*ast.Ident); ok {
				if methods[id.Name] == nil {
					methods[id.Name] = map[string]bool{}
				}
				methods[id.Name][fd.Name.Name] = true
			}
		}
	}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				lines := commentLines(doc)
				key := pkg + "." + ts.Name.Name
				if hasMarker(lines, "+enum") {
					enumTypes[ts.Name.Name] = true
				}
				if v := markerValue(lines, "+structType="); v != "" {
					types[key] = typeMarker{mapType: v}
				}
				if v := markerValue(lines, "+mapType="); v != "" {
					types[key] = typeMarker{mapType: v}
				}
				st, isStruct := ts.Type.(*ast.StructType)
				if ast.IsExported(ts.Name.Name) && !methods[ts.Name.Name]["SwaggerDoc"] && (isStruct || methods[ts.Name.Name]["OpenAPISchemaType"]) {
					if d := docText(doc); d != "" {
						docs[key] = d
					}
				}
				if !isStruct {
					continue
				}
				for _, fld := range st.Fields.List {
					m := fieldMarkerOf(fld)
					if reflect.DeepEqual(m, fieldMarker{}) {
						continue
					}
					for _, name := range fieldNames(fld) {
						fields[key+"."+name] = m
					}
				}
			}
		}
	}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				id, ok := vs.Type.(*ast.Ident)
				if !ok || !enumTypes[id.Name] {
					continue
				}
				doc := vs.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						break
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					val, err := strconv.Unquote(lit.Value)
					if err != nil {
						return err
					}
					key := pkg + "." + id.Name
					enums[key] = addEnumValue(enums[key], enumValue{value: val, comment: enumComment(name.Name, commentLines(doc))})
				}
			}
		}
	}
	// An +enum type without constants is not an enum anyone can use.
	for name := range enumTypes {
		if _, ok := enums[pkg+"."+name]; !ok {
			delete(enumTypes, name)
		}
	}
	return nil
}

// addEnumValue keeps one entry per value, the one with the longer comment,
// as upstream's generator does when a value is declared twice.
func addEnumValue(vals []enumValue, v enumValue) []enumValue {
	for i, old := range vals {
		if old.value == v.value {
			if len(old.comment) < len(v.comment) {
				vals[i] = v
			}
			return vals
		}
	}
	return append(vals, v)
}

var spaces = regexp.MustCompile(`\s+`)

func enumComment(name string, lines []string) string {
	var text []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "+") {
			text = append(text, l)
		}
	}
	c := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.Join(text, " ")), name))
	return spaces.ReplaceAllString(c, " ")
}

// docText formats a doc comment as upstream's descriptions are: marker
// lines dropped, the lines of a paragraph joined with spaces, paragraphs
// separated by a blank line, indented (code) lines kept on their own
// line, TODO lines dropped.
func docText(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	var paras []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			paras = append(paras, cur.String())
			cur.Reset()
		}
	}
	for _, l := range strings.Split(g.Text(), "\n") {
		switch {
		case strings.TrimSpace(l) == "":
			flush()
		case strings.HasPrefix(strings.TrimSpace(l), "+"), strings.HasPrefix(strings.TrimSpace(l), "TODO"):
		case strings.HasPrefix(l, "\t") || strings.HasPrefix(l, " "):
			if cur.Len() > 0 {
				cur.WriteString("\n")
			}
			cur.WriteString(l)
		default:
			if cur.Len() > 0 {
				cur.WriteString(" ")
			}
			cur.WriteString(strings.TrimSpace(l))
		}
	}
	flush()
	return strings.TrimSpace(strings.Join(paras, "\n\n"))
}

func fieldNames(f *ast.Field) []string {
	if len(f.Names) > 0 {
		var out []string
		for _, n := range f.Names {
			out = append(out, n.Name)
		}
		return out
	}
	t := f.Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch t := t.(type) {
	case *ast.Ident:
		return []string{t.Name}
	case *ast.SelectorExpr:
		return []string{t.Sel.Name}
	}
	return nil
}

func fieldMarkerOf(f *ast.Field) fieldMarker {
	lines := commentLines(f.Doc)
	m := fieldMarker{
		listType:   markerValue(lines, "+listType="),
		mapType:    markerValue(lines, "+mapType="),
		structType: markerValue(lines, "+structType="),
	}
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "+listMapKey="); ok {
			m.listMapKeys = append(m.listMapKeys, v)
		}
	}
	omitempty := false
	if f.Tag != nil {
		tag, _ := strconv.Unquote(f.Tag.Value)
		_, opts, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
		omitempty = strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
	}
	// Only record what changes the default inference (optional exactly
	// when the json tag has omitempty): that keeps the table small.
	optional := hasMarker(lines, "+optional") || hasMarker(lines, "+k8s:optional")
	required := hasMarker(lines, "+required") || hasMarker(lines, "+k8s:required")
	m.optional = optional && !required && !omitempty
	m.required = required && omitempty
	return m
}

func commentLines(g *ast.CommentGroup) []string {
	if g == nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(g.Text(), "\n") {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

func hasMarker(lines []string, m string) bool {
	for _, l := range lines {
		if l == m || strings.HasPrefix(l, m+"=") {
			return true
		}
	}
	return false
}

func markerValue(lines []string, prefix string) string {
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			return v
		}
	}
	return ""
}

func render(fields map[string]fieldMarker, types map[string]typeMarker, enums map[string][]enumValue, docs map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by markergen; DO NOT EDIT.\n\npackage openapi\n\n")
	b.WriteString("var generatedFieldMarkers = map[string]fieldMarker{\n")
	for _, k := range sortedKeys(fields) {
		m := fields[k]
		fmt.Fprintf(&b, "%q: {", k)
		if m.listType != "" {
			fmt.Fprintf(&b, "listType: %q, ", m.listType)
		}
		if len(m.listMapKeys) > 0 {
			fmt.Fprintf(&b, "listMapKeys: %#v, ", m.listMapKeys)
		}
		if m.mapType != "" {
			fmt.Fprintf(&b, "mapType: %q, ", m.mapType)
		}
		if m.structType != "" && m.mapType == "" {
			fmt.Fprintf(&b, "mapType: %q, ", m.structType)
		}
		if m.optional {
			b.WriteString("optional: true, ")
		}
		if m.required {
			b.WriteString("required: true, ")
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n\nvar generatedTypeMarkers = map[string]string{\n")
	for _, k := range sortedKeys(types) {
		fmt.Fprintf(&b, "%q: %q,\n", k, types[k].mapType)
	}
	b.WriteString("}\n\nvar generatedEnums = map[string][]enumValue{\n")
	for _, k := range sortedKeys(enums) {
		vals := enums[k]
		sort.Slice(vals, func(i, j int) bool { return vals[i].value < vals[j].value })
		fmt.Fprintf(&b, "%q: {", k)
		for _, v := range vals {
			fmt.Fprintf(&b, "{%q, %q}, ", v.value, v.comment)
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n\nvar generatedTypeDocs = map[string]string{\n")
	for _, k := range sortedKeys(docs) {
		fmt.Fprintf(&b, "%q: %q,\n", k, docs[k])
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
