package docscheck

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Doc is one Markdown file split into what the checks read.
type Doc struct {
	Path string
	// Prose is the text outside fenced code blocks, inline code included.
	Prose []Line
	// Code is every fenced code block's lines, with the block's language.
	Code []Line
	// Spans are the inline code spans of the prose.
	Spans []Line
}

// Line is a piece of text and the line of the file it starts on.
type Line struct {
	N    int
	Text string
	Lang string // of a fenced block's line
}

var spanRE = regexp.MustCompile("`+[^`]+`+")

// Parse splits a Markdown file.
func Parse(path, text string) Doc {
	d := Doc{Path: path}
	fence, lang := "", ""
	for i, line := range strings.Split(text, "\n") {
		n, trimmed := i+1, strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				fence = ""
				continue
			}
			d.Code = append(d.Code, Line{N: n, Text: line, Lang: lang})
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			marker := trimmed[:3]
			fence = marker
			lang = strings.TrimSpace(strings.TrimLeft(trimmed, marker[:1]))
			continue
		}
		d.Prose = append(d.Prose, Line{N: n, Text: line})
		for _, s := range spanRE.FindAllString(line, -1) {
			d.Spans = append(d.Spans, Line{N: n, Text: strings.Trim(s, "`")})
		}
	}
	return d
}

// Anchors are the fragment ids GitHub gives the document's headings:
// lower case, punctuation dropped, spaces as hyphens, a repeated heading
// numbered (-1, -2, …).
func (d Doc) Anchors() map[string]bool {
	out, seen := map[string]bool{}, map[string]int{}
	for _, l := range d.Prose {
		t := strings.TrimSpace(l.Text)
		if !strings.HasPrefix(t, "#") {
			continue
		}
		h := strings.TrimLeft(t, "#")
		if level := len(t) - len(h); level > 6 || (h != "" && h[0] != ' ') {
			continue
		}
		s := Slug(h)
		if k := seen[s]; k > 0 {
			out[s+"-"+strconv.Itoa(k)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// Slug is GitHub's anchor for a heading's text.
func Slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}
