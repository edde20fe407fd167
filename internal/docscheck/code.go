package docscheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

var (
	// pathRE is a repository path in a code span: the docs name files and
	// directories of the code they describe.
	pathRE = regexp.MustCompile(`^(internal|dev|terraform|planner|loader|docs)/[a-z0-9_./-]+$`)
	// identRE is a Go identifier of one of the repository's packages, as
	// the docs name it: pkg.Name.
	identRE = regexp.MustCompile(`^([a-z][a-z0-9]*)\.([A-Z][A-Za-z0-9]*)$`)
	// testRE is a test function's name.
	testRE = regexp.MustCompile(`\bTest[A-Z][A-Za-z0-9_]*\b`)
)

// CodeProblems lists what the documents name in inline code that the
// repository at root does not have: a path (internal/loader/syncer.go), an
// identifier of an internal package (loader.PieceRows) or a test
// (TestCrashAnywhereThenResume).
func CodeProblems(root string, docs []Doc) ([]string, error) {
	tests, err := testNames(root)
	if err != nil {
		return nil, err
	}
	decls := map[string]map[string]bool{}
	var out []string
	for _, d := range docs {
		for _, l := range d.Spans {
			where := fmt.Sprintf("%s:%d", d.Path, l.N)
			switch span := strings.TrimSpace(l.Text); {
			case pathRE.MatchString(span):
				if _, err := os.Stat(filepath.Join(root, span)); err != nil {
					out = append(out, fmt.Sprintf("%s: %s does not exist", where, span))
				}
			case identRE.MatchString(span):
				m := identRE.FindStringSubmatch(span)
				dir := filepath.Join(root, "internal", m[1])
				if _, err := os.Stat(dir); err != nil {
					continue // not one of ours (job.Wait)
				}
				if decls[m[1]] == nil {
					if decls[m[1]], err = exported(dir); err != nil {
						return nil, err
					}
				}
				if !decls[m[1]][m[2]] {
					out = append(out, fmt.Sprintf("%s: internal/%s declares no %s", where, m[1], m[2]))
				}
			}
			for _, name := range testRE.FindAllString(l.Text, -1) {
				if !tests[name] {
					out = append(out, fmt.Sprintf("%s: no test is named %s", where, name))
				}
			}
		}
	}
	return out, nil
}

// exported are the top-level names (and method names) a package's
// non-test files declare.
func exported(dir string) (map[string]bool, error) {
	out := map[string]bool{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				// A method counts too: the docs name Coord.PublishAlone
				// as pgcoord.PublishAlone.
				out[d.Name.Name] = true
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						out[s.Name.Name] = true
					case *ast.ValueSpec:
						for _, n := range s.Names {
							out[n.Name] = true
						}
					}
				}
			}
		}
	}
	return out, nil
}

// testNames are the test functions of every _test.go file under root.
func testNames(root string) (map[string]bool, error) {
	out := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`)
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return nil
	})
	return out, err
}

// refRE is a pointer from code into the docs: docs/page.md, optionally
// followed by a quoted heading ("Rows without a date"), the quotes
// escaped inside a Go or HCL string.
var refRE = regexp.MustCompile(`docs/([a-z0-9-]+\.md)(?:, *\\?"([^"\\]+)\\?")?`)

// refSources are the files whose comments and messages point into the
// docs.
var refSources = []string{".go", ".tf", ".hcl", ".sh", ".yaml", "Makefile"}

// RefProblems lists each pointer into the docs from the code, Terraform,
// scripts and build files under root whose page does not exist, or whose
// quoted heading is no heading of that page.
func RefProblems(root string) ([]string, error) {
	var out []string
	pages := map[string]map[string]bool{}
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			// This package's own tests name pages that do not exist.
			if path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata" || e.Name() == "docs" || e.Name() == "docscheck") {
				return filepath.SkipDir
			}
			return nil
		}
		if !slices.ContainsFunc(refSources, func(s string) bool { return strings.HasSuffix(path, s) }) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range refRE.FindAllStringSubmatch(line, -1) {
				where := fmt.Sprintf("%s:%d", filepath.ToSlash(rel), i+1)
				anchors, ok := pages[m[1]]
				if !ok {
					text, err := os.ReadFile(filepath.Join(root, "docs", m[1]))
					if err == nil {
						anchors = Parse("docs/"+m[1], string(text)).Anchors()
					}
					pages[m[1]] = anchors
				}
				switch {
				case anchors == nil:
					out = append(out, fmt.Sprintf("%s: docs/%s does not exist", where, m[1]))
				case m[2] != "" && !anchors[Slug(m[2])]:
					out = append(out, fmt.Sprintf("%s: docs/%s has no heading %q", where, m[1], m[2]))
				}
			}
		}
		return nil
	})
	return out, err
}
