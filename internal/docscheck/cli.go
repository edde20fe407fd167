package docscheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Program is what a binary's code defines on its command line.
type Program struct {
	Name string
	// Flags are the flags before any command (the binary's only flags
	// when it has no commands).
	Flags []string
	// Commands map each command to its flags; nil for a binary without
	// commands.
	Commands map[string][]string
}

// Invocation is one command line a document shows.
type Invocation struct {
	Where   string // path:line
	Command string // "" for none
	Flags   []string
	Global  []string // flags before the command
}

// wordRE is a command's name.
var wordRE = regexp.MustCompile(`^[a-z]+$`)

// shellLangs are the fenced blocks that hold command lines (a block
// without a language is a picture or output).
var shellLangs = []string{"sh", "bash", "shell", "console"}

// Invocations finds the command lines of p in the documents' inline code
// and shell blocks: the program's name at a command's start, its flags
// and, for a program with commands, the command.
func (p Program) Invocations(docs []Doc) []Invocation {
	start := regexp.MustCompile(`(?:^|[\s;&|(])` + regexp.QuoteMeta(p.Name) + `(?:\s|$)`)
	var out []Invocation
	for _, d := range docs {
		var lines []Line
		lines = append(lines, d.Spans...)
		for _, l := range d.Code {
			if slices.Contains(shellLangs, l.Lang) {
				lines = append(lines, l)
			}
		}
		for _, l := range lines {
			text := l.Text
			for {
				loc := start.FindStringIndex(text)
				if loc == nil {
					break
				}
				rest := text[loc[1]:]
				if end := strings.IndexAny(rest, "#;|&)`"); end >= 0 {
					rest = rest[:end]
				}
				out = append(out, p.parse(fmt.Sprintf("%s:%d", d.Path, l.N), rest))
				text = text[loc[1]:]
			}
		}
	}
	return out
}

// parse reads the words after the program's name.
func (p Program) parse(where, rest string) Invocation {
	inv := Invocation{Where: where}
	cmd := false
	for _, w := range strings.Fields(rest) {
		w = strings.Trim(w, "[],")
		if strings.HasPrefix(w, "-") {
			name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if name == "" {
				break
			}
			if cmd {
				inv.Flags = append(inv.Flags, name)
			} else {
				inv.Global = append(inv.Global, name)
			}
			continue
		}
		switch {
		case cmd || p.Commands == nil:
			continue // a flag's value
		case !wordRE.MatchString(w):
			return inv // a placeholder or prose: the line names no command
		}
		inv.Command, cmd = w, true
	}
	return inv
}

// CommandProblems lists every command or flag the documents show that the
// program does not define.
func (p Program) CommandProblems(docs []Doc) []string {
	var out []string
	for _, inv := range p.Invocations(docs) {
		for _, f := range inv.Global {
			if !slices.Contains(p.Flags, f) && f != "h" && f != "help" {
				out = append(out, fmt.Sprintf("%s: %s has no flag --%s", inv.Where, p.Name, f))
			}
		}
		if inv.Command == "" {
			continue
		}
		flags, ok := p.Commands[inv.Command]
		if !ok {
			out = append(out, fmt.Sprintf("%s: %s has no command %q", inv.Where, p.Name, inv.Command))
			continue
		}
		for _, f := range inv.Flags {
			if !slices.Contains(flags, f) && f != "h" && f != "help" {
				out = append(out, fmt.Sprintf("%s: %s %s has no flag --%s", inv.Where, p.Name, inv.Command, f))
			}
		}
	}
	return out
}

// Undocumented lists every command and flag the program defines that no
// command line of the documents shows (each document should be the
// reference: docs/cli.md).
func (p Program) Undocumented(docs []Doc) []string {
	seen := map[string]bool{}
	for _, inv := range p.Invocations(docs) {
		seen[inv.Command] = true
		for _, f := range inv.Global {
			seen[" --"+f] = true
		}
		for _, f := range inv.Flags {
			seen[inv.Command+" --"+f] = true
		}
	}
	var out []string
	for _, f := range p.Flags {
		if !seen[" --"+f] {
			out = append(out, fmt.Sprintf("%s --%s is not shown", p.Name, f))
		}
	}
	for c, flags := range p.Commands {
		if c != "" && !seen[c] {
			out = append(out, fmt.Sprintf("%s %s is not shown", p.Name, c))
		}
		for _, f := range flags {
			if !seen[c+" --"+f] {
				out = append(out, fmt.Sprintf("%s %s --%s is not shown", p.Name, c, f))
			}
		}
	}
	slices.Sort(out)
	return out
}

// helpFlagRE is a flag's line in a binary's -h text (internal/cli.Help).
var helpFlagRE = regexp.MustCompile(`(?m)^\s+--([a-z][a-z0-9-]*)`)

// FlagsInHelp are the flags a -h text lists.
func FlagsInHelp(help string) []string {
	var out []string
	for _, m := range helpFlagRE.FindAllStringSubmatch(help, -1) {
		out = append(out, m[1])
	}
	return out
}
