package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// parserKeys returns the option names the Caddyfile parser accepts, read
// from the parser's source: in every function of package caddymodule that
// takes a *caddyfile.Dispenser or an httpcaddyfile.Helper, the string
// cases of a switch on the option name (`d.Val()`, `key`, or any variable
// assigned from `d.Val()`), comparisons of it with a string, and the string keys of map literals (the claims
// table). A new option is found however it is added among these shapes.
func parserKeys(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../caddymodule/*.go")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil || !parsesCaddyfile(fn) {
				continue
			}
			collectKeys(fn.Body, keys)
		}
	}
	t.Logf("%d option names in the parser", len(keys))
	if len(keys) < 20 {
		t.Fatalf("found only %d parser keys; has the parser's shape changed? %v", len(keys), keys)
	}
	return keys
}

// parsesCaddyfile reports whether fn reads Caddyfile tokens, or is
// handed an option name read from them (a parameter key string).
func parsesCaddyfile(fn *ast.FuncDecl) bool {
	for _, p := range fn.Type.Params.List {
		if id, ok := p.Type.(*ast.Ident); ok && id.Name == "string" {
			for _, n := range p.Names {
				if n.Name == "key" {
					return true
				}
			}
		}
		typ := p.Type
		if star, ok := typ.(*ast.StarExpr); ok {
			typ = star.X
		}
		if sel, ok := typ.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok {
				name := x.Name + "." + sel.Sel.Name
				if name == "caddyfile.Dispenser" || name == "httpcaddyfile.Helper" {
					return true
				}
			}
		}
	}
	return false
}

// isValCall reports whether e is a call X.Val(): the current token.
func isValCall(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Val"
}

// optionVars returns the names of the variables of body that hold the
// current token (`key := d.Val()`), and "key".
func optionVars(body ast.Node) map[string]bool {
	vars := map[string]bool{"key": true}
	ast.Inspect(body, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == len(as.Rhs) {
			for i, r := range as.Rhs {
				if id, ok := as.Lhs[i].(*ast.Ident); ok && isValCall(r) {
					vars[id.Name] = true
				}
			}
		}
		return true
	})
	return vars
}

func collectKeys(body ast.Node, keys map[string]bool) {
	vars := optionVars(body)
	isOptionName := func(e ast.Expr) bool {
		id, ok := e.(*ast.Ident)
		return isValCall(e) || ok && vars[id.Name]
	}
	add := func(e ast.Expr) {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				keys[s] = true
			}
		}
	}
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SwitchStmt:
			if n.Tag == nil || !isOptionName(n.Tag) {
				return true
			}
			for _, s := range n.Body.List {
				for _, e := range s.(*ast.CaseClause).List {
					add(e)
				}
			}
		case *ast.BinaryExpr:
			if (n.Op == token.EQL || n.Op == token.NEQ) && isOptionName(n.X) {
				add(n.Y)
			}
		case *ast.CompositeLit:
			if _, ok := n.Type.(*ast.MapType); ok {
				for _, e := range n.Elts {
					add(e.(*ast.KeyValueExpr).Key)
				}
			}
		}
		return true
	})
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// documentedOptions returns the code spans of the first column of the
// README's option tables (those headed "| option | default | meaning |"),
// leaving out rows marked "(JSON only)".
func documentedOptions(t *testing.T) []string {
	t.Helper()
	raw := readFile(t, "../README.md")
	var out []string
	inTable := false
	for _, line := range strings.Split(raw, "\n") {
		switch {
		case strings.HasPrefix(line, "| option | default | meaning |"):
			inTable = true
		case !strings.HasPrefix(line, "|"):
			inTable = false
		case inTable && !strings.HasPrefix(line, "| ---"):
			first := strings.Split(line, "|")[1]
			if strings.Contains(first, "(JSON only)") {
				continue // a field with no Caddyfile form
			}
			for _, m := range codeSpan.FindAllStringSubmatch(first, -1) {
				out = append(out, m[1])
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d documented options in the README's option tables", len(out))
	}
	return out
}

// TestEveryOptionDocumented: every option name the Caddyfile parser
// accepts appears in the README's option tables (alone or after its
// block's name, as in `jwt alg`), and every documented option starts
// with a name the parser accepts.
func TestEveryOptionDocumented(t *testing.T) {
	keys := parserKeys(t)
	words := map[string]bool{}
	for _, opt := range documentedOptions(t) {
		fields := strings.Fields(opt)
		for _, w := range fields {
			words[w] = true
		}
		if !keys[fields[0]] {
			t.Errorf("README documents option %q, but the Caddyfile parser has no %q", opt, fields[0])
		}
	}
	var missing []string
	for k := range keys {
		if !words[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("options the Caddyfile parser accepts but the README's option tables do not name: %v", missing)
	}
}
