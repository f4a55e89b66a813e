package traefikload

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// A Finding is a construct that Yaegi v0.16.1 runs wrongly, or races on,
// at a position in a source file.
type Finding struct {
	Pos  token.Position
	What string
}

func (f Finding) String() string { return f.Pos.String() + ": " + f.What }

// yaegiBuild selects a package's files as Yaegi does for the plugin: the
// host's GOOS and GOARCH, and the yaegi tag, which a `yaegi:tags yaegi`
// line sets for the files that follow it (edge/auth picks its Yaegi-safe
// elliptic-curve code that way).
var yaegiBuild = func() build.Context {
	c := build.Default
	c.BuildTags = append([]string{"yaegi"}, c.BuildTags...)
	return c
}()

// Guard type-checks the Go package in dir (its imports resolved from dir's
// module, vendor/ included) and reports every construct Yaegi v0.16.1
// cannot be trusted with:
//
//   - generic code (type parameters: inference from arguments fails);
//   - range over an int or a func;
//   - atomic.Pointer[T], and the min and max builtins;
//   - the slices, maps and embed packages, and //go:embed;
//   - error types with Unwrap, Is or As methods (compiled errors.Is/As
//     cannot see through an interpreted chain);
//   - jwt/v5 struct claims (RegisteredClaims decode empty);
//   - a, b = x, f(y) (the first assignment is lost);
//   - a function literal with an unnamed parameter (reflect.Set panics);
//   - select (two goroutines running the same statement share its cases);
//   - a tagless switch case with a comma list (only the first is tested);
//   - for i := 0; ; { (never ends);
//   - a method with named results called as a method expression (they
//     come back zero);
//   - a package-level function returned as a named func type (reflect.Set
//     panics).

func Guard(dir string) ([]Finding, error) {
	guardMu.Lock()
	defer guardMu.Unlock()
	fset := guardFset
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ok, err := yaegiBuild.MatchFile(dir, name); err != nil || !ok {
			continue // a file Yaegi does not load (its build constraints)
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	info := &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Uses:       map[*ast.Ident]types.Object{},
		Defs:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	// The source importer resolves each import from the importing file's
	// directory, in its module: the plugin's, whose vendor/ holds what
	// Yaegi loads.
	conf := types.Config{Importer: guardImporter}
	if _, err := conf.Check(files[0].Name.Name, fset, files, info); err != nil {
		return nil, fmt.Errorf("type-checking %s: %w", dir, err)
	}
	g := &guard{fset: fset, info: info}
	for _, f := range files {
		g.file(f)
	}
	sort.Slice(g.found, func(i, j int) bool {
		a, b := g.found[i].Pos, g.found[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Line < b.Line
	})
	return g.found, nil
}

// The packages the guard imports are type-checked once, for every Guard.
var (
	guardMu       sync.Mutex
	guardFset     = token.NewFileSet()
	guardImporter = importer.ForCompiler(guardFset, "source", nil)
)

type guard struct {
	fset  *token.FileSet
	info  *types.Info
	found []Finding
}

func (g *guard) report(n ast.Node, what string) {
	g.found = append(g.found, Finding{Pos: g.fset.Position(n.Pos()), What: what})
}

func (g *guard) file(f *ast.File) {
	for _, imp := range f.Imports {
		switch strings.Trim(imp.Path.Value, `"`) {
		case "slices", "maps", "embed":
			g.report(imp, "import "+imp.Path.Value+" (not among Traefik's Yaegi symbols, or generic)")
		}
	}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if strings.HasPrefix(c.Text, "//go:embed") {
				g.report(c, "//go:embed (Yaegi has no embed)")
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			if n.Type.TypeParams != nil {
				g.report(n, "generic function "+n.Name.Name)
			}
			g.methodErrorChain(n)
			g.returnsFuncAsNamed(n)
		case *ast.TypeSpec:
			if n.TypeParams != nil {
				g.report(n, "generic type "+n.Name.Name)
			}
		case *ast.RangeStmt:
			if t := g.info.TypeOf(n.X); t != nil {
				switch u := t.Underlying().(type) {
				case *types.Basic:
					if u.Info()&types.IsInteger != 0 {
						g.report(n, "range over an int")
					}
				case *types.Signature:
					g.report(n, "range over a func")
				}
			}
		case *ast.Ident:
			if b, ok := g.info.Uses[n].(*types.Builtin); ok && (b.Name() == "min" || b.Name() == "max") {
				g.report(n, "the "+b.Name()+" builtin")
			}
			if tn, ok := g.info.Uses[n].(*types.TypeName); ok && tn.Pkg() != nil {
				switch tn.Pkg().Path() + "." + tn.Name() {
				case "sync/atomic.Pointer":
					g.report(n, "atomic.Pointer[T]")
				case "github.com/golang-jwt/jwt/v5.RegisteredClaims":
					g.report(n, "jwt/v5 struct claims (decode empty under Yaegi: use MapClaims)")
				}
			}
		case *ast.AssignStmt:
			g.lostAssignment(n)
		case *ast.FuncLit:
			for _, field := range n.Type.Params.List {
				if len(field.Names) == 0 {
					g.report(n, "function literal with an unnamed parameter")
					break
				}
			}
		case *ast.SelectStmt:
			g.report(n, "select (goroutines running the same statement share its cases: use edge/internal/alarm)")
		case *ast.SwitchStmt:
			if n.Tag == nil {
				for _, s := range n.Body.List {
					if cc := s.(*ast.CaseClause); len(cc.List) > 1 {
						g.report(cc, "tagless switch case with a comma list (only its first condition is tested: use ||)")
					}
				}
			}
		case *ast.ForStmt:
			if n.Init != nil && n.Cond == nil && n.Post == nil {
				g.report(n, "for with an init statement and neither condition nor post statement (never ends)")
			}
		case *ast.CallExpr:
			g.methodExpression(n)
		}
		return true
	})
}

// lostAssignment reports a, b = x, f(y): several values assigned at once
// when one after the first comes from a call. A definition (a, b := x,
// f(y)) keeps every value under Yaegi v0.16.1 — with a variable, a
// constant or a call first, as the generated policy decoder writes them —
// and is not reported.
func (g *guard) lostAssignment(n *ast.AssignStmt) {
	if n.Tok == token.DEFINE || len(n.Lhs) < 2 || len(n.Lhs) != len(n.Rhs) {
		return
	}
	for _, rhs := range n.Rhs[1:] {
		call, ok := rhs.(*ast.CallExpr)
		if !ok {
			continue
		}
		if tv, ok := g.info.Types[call.Fun]; ok && tv.IsType() {
			continue // a conversion
		}
		g.report(n, "a, b = x, f(y) (the first assignment is lost)")
		return
	}
}

// methodErrorChain reports Unwrap, Is and As methods.
func (g *guard) methodErrorChain(n *ast.FuncDecl) {
	if n.Recv == nil {
		return
	}
	switch n.Name.Name {
	case "Unwrap", "Is", "As":
		g.report(n, "error method "+n.Name.Name+" (compiled errors.Is/As cannot see through interpreted error chains)")
	}
}

// methodExpression reports (*T).M(x, …) of a method with named results.
func (g *guard) methodExpression(call *ast.CallExpr) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return
	}
	s := g.info.Selections[sel]
	if s == nil || s.Kind() != types.MethodExpr {
		return
	}
	results := s.Obj().Type().(*types.Signature).Results()
	for i := 0; i < results.Len(); i++ {
		if results.At(i).Name() != "" {
			g.report(call, "method expression call of "+s.Obj().Name()+", which has named results (Yaegi returns them zero)")
			return
		}
	}
}

// returnsFuncAsNamed reports a package-level function returned where a
// named func type is the result.
func (g *guard) returnsFuncAsNamed(fn *ast.FuncDecl) {
	obj, ok := g.info.Defs[fn.Name].(*types.Func)
	if !ok || fn.Body == nil {
		return
	}
	results := obj.Type().(*types.Signature).Results()
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if _, lit := n.(*ast.FuncLit); lit {
			return false // its returns are its own
		}
		ret, ok := n.(*ast.ReturnStmt)
		if !ok || len(ret.Results) != results.Len() {
			return true
		}
		for i, r := range ret.Results {
			id, ok := r.(*ast.Ident)
			if !ok {
				continue
			}
			f, isFunc := g.info.Uses[id].(*types.Func)
			named, isNamed := results.At(i).Type().(*types.Named)
			if isFunc && isNamed && f.Parent() == f.Pkg().Scope() {
				if _, sig := named.Underlying().(*types.Signature); sig {
					g.report(ret, "package-level function "+f.Name()+" returned as the named func type "+named.Obj().Name()+" (reflect.Set panics)")
				}
			}
		}
		return true
	})
}
