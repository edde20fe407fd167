package docscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// linkRE finds inline links and images: [text](target) and ![alt](target).
var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// LinkProblems lists every relative link of the files (paths relative to
// root) whose target does not exist, or whose #anchor is no heading of the
// Markdown file it points at. Links to other sites are not followed.
func LinkProblems(root string, files []string) []string {
	var out []string
	docs := map[string]Doc{}
	load := func(rel string) (Doc, error) {
		if d, ok := docs[rel]; ok {
			return d, nil
		}
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return Doc{}, err
		}
		d := Parse(rel, string(b))
		docs[rel] = d
		return d, nil
	}
	for _, f := range files {
		d, err := load(f)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		for _, l := range d.Prose {
			for _, m := range linkRE.FindAllStringSubmatch(stripSpans(l.Text), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, anchor, _ := strings.Cut(target, "#")
				rel := f
				if path != "" {
					rel = filepath.ToSlash(filepath.Join(filepath.Dir(f), path))
					if strings.HasPrefix(rel, "../") {
						out = append(out, fmt.Sprintf("%s:%d: link %q leaves the repository", f, l.N, target))
						continue
					}
					if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
						out = append(out, fmt.Sprintf("%s:%d: link %q: %s does not exist", f, l.N, target, rel))
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(rel, ".md") {
					out = append(out, fmt.Sprintf("%s:%d: link %q has an anchor into a file that is not Markdown", f, l.N, target))
					continue
				}
				td, err := load(rel)
				if err != nil {
					out = append(out, fmt.Sprintf("%s:%d: link %q: %v", f, l.N, target, err))
					continue
				}
				if !td.Anchors()[anchor] {
					out = append(out, fmt.Sprintf("%s:%d: link %q: %s has no heading with the anchor #%s", f, l.N, target, rel, anchor))
				}
			}
		}
	}
	return out
}

// stripSpans blanks inline code, where brackets are not links.
func stripSpans(line string) string {
	return spanRE.ReplaceAllStringFunc(line, func(s string) string { return strings.Repeat(" ", len(s)) })
}
