package config

import (
	"reflect"
	"strings"
)

// Var is one environment variable a configuration struct reads.
type Var struct {
	Name    string // e.g. SYNC_CHUNK_SIZE
	Path    string // Go field path as go-envconfig reports it, e.g. "Common: Sync: ChunkSize"
	Default string
}

// Variables lists every environment variable that the struct pointed to
// by c reads, from its env tags (prefixes included), in field order.
func Variables(c any) []Var {
	var out []Var
	walk(reflect.TypeOf(c).Elem(), "", "", &out)
	return out
}

func walk(t reflect.Type, prefix, path string, out *[]Var) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("env")
		name, opts, _ := strings.Cut(tag, ",")
		p := f.Name
		if path != "" {
			p = path + ": " + f.Name
		}
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() != "time" && name == "" {
			walk(f.Type, prefix+optValue(opts, "prefix"), p, out)
			continue
		}
		if name == "" {
			continue
		}
		*out = append(*out, Var{Name: prefix + name, Path: p, Default: optValue(opts, "default")})
	}
}

func optValue(opts, key string) string {
	for _, o := range strings.Split(opts, ",") {
		o = strings.TrimSpace(o)
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			return v
		}
	}
	return ""
}
