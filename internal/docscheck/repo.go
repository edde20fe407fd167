package docscheck

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Root is the repository's root: the nearest directory above the working
// directory that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Pages are the documentation files checked, relative to root: README.md,
// docs/*.md and terraform/README.md.
func Pages(t testing.TB, root string) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md", "terraform/README.md"}
	for _, d := range docs {
		out = append(out, filepath.ToSlash(must(filepath.Rel(root, d))))
	}
	sort.Strings(out[2:])
	return out
}

// Load parses the pages.
func Load(t testing.TB, root string, pages []string) []Doc {
	t.Helper()
	var out []Doc
	for _, p := range pages {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Parse(p, string(b)))
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
