// Package tfeval is a small evaluator for this repository's Terraform:
// enough of Terraform's semantics to compute, offline and without
// providers, what each environment would ask the provider for.
//
// Variables come from a .tfvars file and the variables' defaults
// (converted to their declared types, optional attributes included) and
// are validated as at plan time; locals, module inputs and outputs are
// evaluated through the module tree. Resources with count or for_each
// expand into one instance per index or key, each evaluated with its own
// count.index or each. Attributes that only the cloud knows (a service
// account's email, a service's URL, a project's number) evaluate to a
// placeholder naming the instance they come from,
// "<dev.iam/google_service_account.loader.email>" or
// "<dev.pubsub/google_pubsub_topic.t[1].id>", so a caller can tell which
// resource an expression points at. Attributes set in configuration
// evaluate to their configured value.
//
// What it does not do: providers, plan, apply, count/for_each on module
// calls or data sources, splat expressions over resources. A construct it
// does not know is an error, never a silent pass; so is an error anywhere
// in a child module a value is read from.
package tfeval

import (
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/terraform-config-inspect/tfconfig"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Module is one Terraform module directory, parsed.
type Module struct {
	Dir       string
	Inspect   *tfconfig.Module
	Files     map[string]*hclsyntax.Body
	Variables map[string]*hclsyntax.Block
	Locals    map[string]*hclsyntax.Attribute
	Outputs   map[string]*hclsyntax.Block
	Calls     map[string]*hclsyntax.Block
	Resources map[string]*hclsyntax.Block // "type.name"
	Data      map[string]*hclsyntax.Block // "type.name"
	Terraform []*hclsyntax.Block
}

var (
	modulesMu sync.Mutex
	modules   = map[string]*Module{}
)

// LoadModule parses the module in dir (once per test binary).
func LoadModule(dir string) (*Module, error) {
	dir = filepath.Clean(dir)
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m, ok := modules[dir]; ok {
		return m, nil
	}
	insp, diags := tfconfig.LoadModule(dir)
	if diags.HasErrors() {
		return nil, fmt.Errorf("tfconfig %s: %w", dir, diags.Err())
	}
	m := &Module{Dir: dir, Inspect: insp, Files: map[string]*hclsyntax.Body{},
		Variables: map[string]*hclsyntax.Block{}, Locals: map[string]*hclsyntax.Attribute{},
		Outputs: map[string]*hclsyntax.Block{}, Calls: map[string]*hclsyntax.Block{},
		Resources: map[string]*hclsyntax.Block{}, Data: map[string]*hclsyntax.Block{}}
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no .tf files", dir)
	}
	parser := hclparse.NewParser()
	for _, p := range paths {
		f, diags := parser.ParseHCLFile(p)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %s", p, diags.Error())
		}
		body := f.Body.(*hclsyntax.Body)
		strictLogic(body)
		m.Files[p] = body
		for _, b := range body.Blocks {
			switch b.Type {
			case "variable":
				m.Variables[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					if _, dup := m.Locals[name]; dup {
						return nil, fmt.Errorf("%s: local.%s declared twice", dir, name)
					}
					m.Locals[name] = a
				}
			case "output":
				m.Outputs[b.Labels[0]] = b
			case "module":
				m.Calls[b.Labels[0]] = b
			case "resource":
				m.Resources[b.Labels[0]+"."+b.Labels[1]] = b
			case "data":
				m.Data[b.Labels[0]+"."+b.Labels[1]] = b
			case "terraform":
				m.Terraform = append(m.Terraform, b)
			}
		}
	}
	modules[dir] = m
	return m, nil
}

// Terraform before 1.12 evaluates both operands of || and && and fails on
// an error in either ("x == null || x > 0" fails for a null x); newer HCL
// short-circuits. The modules allow Terraform ~> 1.9, so the evaluator
// keeps the strict rule: such an expression fails here as it does there.
var (
	strictOr  = &hclsyntax.Operation{Impl: stdlib.OrFunc, Type: cty.Bool}
	strictAnd = &hclsyntax.Operation{Impl: stdlib.AndFunc, Type: cty.Bool}
)

func strictLogic(body *hclsyntax.Body) {
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		if b, ok := n.(*hclsyntax.BinaryOpExpr); ok {
			switch b.Op {
			case hclsyntax.OpLogicalOr:
				b.Op = strictOr
			case hclsyntax.OpLogicalAnd:
				b.Op = strictAnd
			}
		}
		return nil
	})
}

// varType is the declared type of variable name, with its optional
// attributes' defaults (cty.DynamicPseudoType when undeclared).
func (m *Module) varType(name string) (cty.Type, *typeexpr.Defaults, error) {
	b := m.Variables[name]
	a, ok := b.Body.Attributes["type"]
	if !ok {
		return cty.DynamicPseudoType, nil, nil
	}
	ty, defs, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
	if diags.HasErrors() {
		return cty.NilType, nil, fmt.Errorf("%s: variable %q type: %s", m.Dir, name, diags.Error())
	}
	return ty, defs, nil
}

// convertVar converts a value given for variable name to its type, filling
// optional attributes' defaults as Terraform does.
func (m *Module) convertVar(name string, v cty.Value) (cty.Value, error) {
	ty, defs, err := m.varType(name)
	if err != nil {
		return cty.NilVal, err
	}
	if defs != nil {
		v = defs.Apply(v)
	}
	out, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: variable %q: %v", m.Dir, name, err)
	}
	return out, nil
}

// defaultOf evaluates variable name's default; ok is false when it has none.
func (m *Module) defaultOf(name string) (cty.Value, bool, error) {
	a, ok := m.Variables[name].Body.Attributes["default"]
	if !ok {
		return cty.NilVal, false, nil
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{Functions: Functions()})
	if diags.HasErrors() {
		return cty.NilVal, false, fmt.Errorf("%s: default of %q: %s", m.Dir, name, diags.Error())
	}
	return v, true, nil
}

// ValidationFailure is one validation block whose condition is false.
type ValidationFailure struct {
	Variable string
	Message  string
}

// validate evaluates the validation blocks of variable name for value v the
// way Terraform does at plan time (only var.<name> is in Scope) and returns
// the error messages a person would see.
func (m *Module) Validate(name string, v cty.Value) ([]ValidationFailure, error) {
	b, ok := m.Variables[name]
	if !ok {
		return nil, fmt.Errorf("%s: no variable %q", m.Dir, name)
	}
	cv, err := m.convertVar(name, v)
	if err != nil {
		return nil, err
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: cv})},
		Functions: Functions(),
	}
	var out []ValidationFailure
	for _, vb := range b.Body.Blocks {
		if vb.Type != "validation" {
			continue
		}
		cond, diags := vb.Body.Attributes["condition"].Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: variable %q: condition: %s", m.Dir, name, diags.Error())
		}
		cond, err := convert.Convert(cond, cty.Bool)
		if err != nil || cond.IsNull() || !cond.IsKnown() {
			return nil, fmt.Errorf("%s: variable %q: condition is not a known bool (%#v)", m.Dir, name, cond)
		}
		if cond.True() {
			continue
		}
		msg, diags := vb.Body.Attributes["error_message"].Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: variable %q: error_message: %s", m.Dir, name, diags.Error())
		}
		out = append(out, ValidationFailure{Variable: name, Message: msg.AsString()})
	}
	return out, nil
}

// Instance is a module with its input values: the root of an environment,
// or a module call below it.
type Instance struct {
	Mod      *Module
	Path     string // "dev", "dev.loader"
	parent   *Instance
	call     *hclsyntax.Block     // the module block that made it; nil for a root
	Vars     map[string]cty.Value // evaluated input variables (all of them for a root)
	locals   map[string]cty.Value
	children map[string]*Instance
	attrs    map[string]cty.Value // resource attributes evaluated from configuration
	busy     map[string]bool
}

// NewRoot instantiates the root module in dir with the variable values of
// the .tfvars file tfvars, then overrides. Every value must pass its
// variable's validation: an example that a plan would reject is an error.
func NewRoot(path, dir, tfvars string, overrides map[string]cty.Value) (*Instance, error) {
	m, err := LoadModule(dir)
	if err != nil {
		return nil, err
	}
	given := map[string]cty.Value{}
	if tfvars != "" {
		src, err := os.ReadFile(tfvars)
		if err != nil {
			return nil, err
		}
		f, diags := hclsyntax.ParseConfig(src, tfvars, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %s", tfvars, diags.Error())
		}
		body := f.Body.(*hclsyntax.Body)
		if len(body.Blocks) > 0 {
			return nil, fmt.Errorf("%s: blocks are not allowed in a .tfvars file", tfvars)
		}
		for name, a := range body.Attributes {
			if _, ok := m.Variables[name]; !ok {
				return nil, fmt.Errorf("%s: %q is not a variable of %s", tfvars, name, dir)
			}
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				return nil, fmt.Errorf("%s: %s: %s", tfvars, name, diags.Error())
			}
			given[name] = v
		}
	}
	for name, v := range overrides {
		if _, ok := m.Variables[name]; !ok {
			return nil, fmt.Errorf("override %q is not a variable of %s", name, dir)
		}
		given[name] = v
	}
	vars := map[string]cty.Value{}
	for name := range m.Variables {
		v, ok := given[name]
		if !ok {
			d, has, err := m.defaultOf(name)
			if err != nil {
				return nil, err
			}
			if !has {
				return nil, fmt.Errorf("%s: variable %q is required and has no value", path, name)
			}
			v = d
		}
		fails, err := m.Validate(name, v)
		if err != nil {
			return nil, err
		}
		for _, f := range fails {
			return nil, fmt.Errorf("%s: var.%s fails validation: %s", path, name, f.Message)
		}
		if vars[name], err = m.convertVar(name, v); err != nil {
			return nil, err
		}
	}
	return newInstance(path, m, nil, vars), nil
}

func newInstance(path string, m *Module, parent *Instance, vars map[string]cty.Value) *Instance {
	return &Instance{Mod: m, Path: path, parent: parent, Vars: vars,
		locals: map[string]cty.Value{}, children: map[string]*Instance{},
		attrs: map[string]cty.Value{}, busy: map[string]bool{}}
}

// metaArgs are module call arguments that are not input variables.
var metaArgs = map[string]bool{"source": true, "version": true, "depends_on": true, "providers": true, "count": true, "for_each": true}

// child instantiates module call name.
func (in *Instance) Child(name string) (*Instance, error) {
	if c, ok := in.children[name]; ok {
		return c, nil
	}
	call, ok := in.Mod.Calls[name]
	if !ok {
		return nil, fmt.Errorf("%s: no module %q", in.Path, name)
	}
	if _, ok := call.Body.Attributes["count"]; ok {
		return nil, fmt.Errorf("%s: module %q: count on module calls is not supported here", in.Path, name)
	}
	if _, ok := call.Body.Attributes["for_each"]; ok {
		return nil, fmt.Errorf("%s: module %q: for_each on module calls is not supported here", in.Path, name)
	}
	srcAttr, ok := call.Body.Attributes["source"]
	if !ok {
		return nil, fmt.Errorf("%s: module %q has no source", in.Path, name)
	}
	src, diags := srcAttr.Expr.Value(nil)
	if diags.HasErrors() || src.Type() != cty.String {
		return nil, fmt.Errorf("%s: module %q: source must be a literal string", in.Path, name)
	}
	if !strings.HasPrefix(src.AsString(), "./") && !strings.HasPrefix(src.AsString(), "../") {
		return nil, fmt.Errorf("%s: module %q: only local sources are evaluated, got %q", in.Path, name, src.AsString())
	}
	m, err := LoadModule(filepath.Join(in.Mod.Dir, src.AsString()))
	if err != nil {
		return nil, err
	}
	for arg := range call.Body.Attributes {
		if _, ok := m.Variables[arg]; !ok && !metaArgs[arg] {
			return nil, fmt.Errorf("%s: module %q: argument %q is not a variable of %s", in.Path, name, arg, m.Dir)
		}
	}
	c := newInstance(in.Path+"."+name, m, in, map[string]cty.Value{})
	c.call = call
	in.children[name] = c
	return c, nil
}

// variable is the value of input variable name: for a module call, its
// argument evaluated in the calling module (or its default), converted to
// its type and validated. Evaluated on first use, as Terraform does, so
// that modules may feed each other (loader URL to pubsub, topic to loader).
func (in *Instance) Variable(name string) (cty.Value, error) {
	if v, ok := in.Vars[name]; ok {
		return v, nil
	}
	if _, ok := in.Mod.Variables[name]; !ok || in.call == nil {
		return cty.NilVal, fmt.Errorf("%s: no variable %q", in.Path, name)
	}
	key := "var." + name
	if in.busy[key] {
		return cty.NilVal, fmt.Errorf("%s: var.%s depends on itself", in.Path, name)
	}
	in.busy[key] = true
	defer delete(in.busy, key)
	var v cty.Value
	if a, ok := in.call.Body.Attributes[name]; ok {
		var err error
		if v, err = in.parent.eval(a.Expr, nil); err != nil {
			return cty.NilVal, fmt.Errorf("%s: argument %q: %w", in.Path, name, err)
		}
	} else {
		d, has, err := in.Mod.defaultOf(name)
		if err != nil {
			return cty.NilVal, err
		}
		if !has {
			return cty.NilVal, fmt.Errorf("%s: required variable %q is not set", in.Path, name)
		}
		v = d
	}
	fails, err := in.Mod.Validate(name, v)
	if err != nil {
		return cty.NilVal, err
	}
	for _, f := range fails {
		return cty.NilVal, fmt.Errorf("%s: var.%s fails validation: %s", in.Path, name, f.Message)
	}
	if v, err = in.Mod.convertVar(name, v); err != nil {
		return cty.NilVal, err
	}
	in.Vars[name] = v
	return v, nil
}

// checkInputs evaluates every input variable of every module Instance, so
// that a missing argument or a failing validation anywhere is reported.
func (in *Instance) CheckInputs() error {
	return in.Walk(func(i *Instance) error {
		for name := range i.Mod.Variables {
			if _, err := i.Variable(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// walk calls fn for in and every module Instance below it, depth first.
func (in *Instance) Walk(fn func(*Instance) error) error {
	if err := fn(in); err != nil {
		return err
	}
	names := make([]string, 0, len(in.Mod.Calls))
	for name := range in.Mod.Calls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c, err := in.Child(name)
		if err != nil {
			return err
		}
		if err := c.Walk(fn); err != nil {
			return err
		}
	}
	return nil
}

func (in *Instance) local(name string) (cty.Value, error) {
	if v, ok := in.locals[name]; ok {
		return v, nil
	}
	a, ok := in.Mod.Locals[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: no local.%s", in.Path, name)
	}
	key := "local." + name
	if in.busy[key] {
		return cty.NilVal, fmt.Errorf("%s: local.%s refers to itself", in.Path, name)
	}
	in.busy[key] = true
	defer delete(in.busy, key)
	v, err := in.eval(a.Expr, nil)
	if err != nil {
		return cty.NilVal, fmt.Errorf("local.%s: %w", name, err)
	}
	in.locals[name] = v
	return v, nil
}

func (in *Instance) Output(name string) (cty.Value, error) {
	b, ok := in.Mod.Outputs[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: no output %q", in.Path, name)
	}
	return in.eval(b.Body.Attributes["value"].Expr, nil)
}

// symbol is the placeholder for an attribute only the cloud knows; label
// is the instance key ("[0]", "[\"loader\"]") of a counted resource.
func (in *Instance) symbol(ref, label, attr string) cty.Value {
	return cty.StringVal(fmt.Sprintf("<%s/%s%s.%s>", in.Path, ref, label, attr))
}

// SymbolRE matches one placeholder: instance path, resource type (or
// data.type), resource name, instance key (a count index or a quoted
// for_each key; empty for a single instance), attribute.
var SymbolRE = regexp.MustCompile(`<([a-z0-9_.]+)/((?:data\.)?[a-z0-9_]+)\.([a-z0-9_]+)(?:\[([0-9]+|"[^"]*")\])?\.([a-z0-9_]+)>`)

// instanceKey is one instance of a resource block: its key (cty.NilVal for
// a block without count or for_each), the label placeholders carry, and
// the names (count, each) its expressions see.
type instanceKey struct {
	key   cty.Value
	label string
	extra map[string]cty.Value
}

// expansion is how a resource block expands: mode is "", "count" or
// "for_each", keys its instances in Terraform's order.
func (in *Instance) expansion(ref string, b *hclsyntax.Block) (mode string, keys []instanceKey, err error) {
	if a, ok := b.Body.Attributes["count"]; ok {
		if _, both := b.Body.Attributes["for_each"]; both {
			return "", nil, fmt.Errorf("%s: %s has both count and for_each", in.Path, ref)
		}
		n, err := in.eval(a.Expr, nil)
		if err != nil {
			return "", nil, fmt.Errorf("%s count: %w", ref, err)
		}
		n, err = convert.Convert(n, cty.Number)
		if err != nil || n.IsNull() || !n.IsKnown() {
			return "", nil, fmt.Errorf("%s: %s count is not a known number", in.Path, ref)
		}
		count, acc := n.AsBigFloat().Int64()
		if acc != big.Exact || count < 0 {
			return "", nil, fmt.Errorf("%s: %s count %s is not a whole number >= 0", in.Path, ref, n.AsBigFloat().String())
		}
		for i := int64(0); i < count; i++ {
			keys = append(keys, instanceKey{key: cty.NumberIntVal(i), label: fmt.Sprintf("[%d]", i),
				extra: map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(i)})}})
		}
		return "count", keys, nil
	}
	if a, ok := b.Body.Attributes["for_each"]; ok {
		coll, err := in.eval(a.Expr, nil)
		if err != nil {
			return "", nil, fmt.Errorf("%s for_each: %w", ref, err)
		}
		if !coll.IsWhollyKnown() || coll.IsNull() {
			return "", nil, fmt.Errorf("%s: %s for_each is not known", in.Path, ref)
		}
		ty := coll.Type()
		switch {
		case ty.IsMapType() || ty.IsObjectType():
		case ty.IsSetType() && ty.ElementType() == cty.String:
		default:
			// Terraform's rule: a map, or a set of strings.
			return "", nil, fmt.Errorf("%s: %s for_each is a %s; Terraform wants a map or a set of strings", in.Path, ref, ty.FriendlyName())
		}
		for it := coll.ElementIterator(); it.Next(); {
			k, v := it.Element()
			if ty.IsSetType() {
				k = v
			}
			keys = append(keys, instanceKey{key: k, label: "[" + strconv.Quote(k.AsString()) + "]",
				extra: map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}})
		}
		return "for_each", keys, nil
	}
	return "", []instanceKey{{key: cty.NilVal}}, nil
}

// resourceAttr is the value of attribute attr of instance k of resource ref
// ("type.name"): its configured value, evaluated with that instance's count
// or each, when it is a plain top-level argument; a placeholder naming the
// instance otherwise.
func (in *Instance) resourceAttr(ref string, k instanceKey, attr string) (cty.Value, error) {
	b := in.Mod.Resources[ref]
	a, configured := b.Body.Attributes[attr]
	if !configured || metaArgs[attr] {
		return in.symbol(ref, k.label, attr), nil
	}
	key := ref + k.label + "." + attr
	if v, ok := in.attrs[key]; ok {
		return v, nil
	}
	if in.busy[key] {
		return cty.NilVal, fmt.Errorf("%s: %s refers to itself", in.Path, key)
	}
	in.busy[key] = true
	defer delete(in.busy, key)
	v, err := in.eval(a.Expr, k.extra)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: %w", key, err)
	}
	in.attrs[key] = v
	return v, nil
}

func traverseAttr(tr hcl.Traversal, i int) (string, bool) {
	if i >= len(tr) {
		return "", false
	}
	switch s := tr[i].(type) {
	case hcl.TraverseAttr:
		return s.Name, true
	case hcl.TraverseRoot:
		return s.Name, true
	}
	return "", false
}

// refs collects, per referenced object, the attributes an expression reads
// from it and the Instance keys it indexes it by.
type refs struct {
	attrs map[string]bool
	keys  map[string]cty.Value // index key (as Go string) -> key value
	whole bool
}

func addRef(all map[string]*refs, name string, tr hcl.Traversal, at int) {
	r, ok := all[name]
	if !ok {
		r = &refs{attrs: map[string]bool{}, keys: map[string]cty.Value{}}
		all[name] = r
	}
	if at < len(tr) {
		if ix, ok := tr[at].(hcl.TraverseIndex); ok {
			r.keys[ix.Key.GoString()] = ix.Key
			at++
		}
	}
	if a, ok := traverseAttr(tr, at); ok {
		r.attrs[a] = true
	} else {
		r.whole = true
	}
}

// evalContext builds the scope expr needs in this Instance.
func (in *Instance) evalContext(expr hcl.Expression, extra map[string]cty.Value) (*hcl.EvalContext, error) {
	vars := map[string]cty.Value{}
	needVars := map[string]bool{}
	locals := map[string]bool{}
	mods := map[string]map[string]bool{}
	resources := map[string]*refs{} // "type.name"
	data := map[string]*refs{}      // "type.name"
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		if v, ok := extra[root]; ok {
			vars[root] = v
			continue
		}
		switch root {
		case "var":
			name, ok := traverseAttr(tr, 1)
			if !ok {
				return nil, fmt.Errorf("%s: bare reference to var", in.Path)
			}
			needVars[name] = true
		case "local":
			name, ok := traverseAttr(tr, 1)
			if !ok {
				return nil, fmt.Errorf("%s: bare reference to local", in.Path)
			}
			locals[name] = true
		case "module":
			name, ok := traverseAttr(tr, 1)
			if !ok {
				return nil, fmt.Errorf("%s: bare reference to module", in.Path)
			}
			if mods[name] == nil {
				mods[name] = map[string]bool{}
			}
			if out, ok := traverseAttr(tr, 2); ok {
				mods[name][out] = true
			} else {
				outs, err := in.childOutputs(name)
				if err != nil {
					return nil, err
				}
				for o := range outs {
					mods[name][o] = true
				}
			}
		case "data":
			typ, ok1 := traverseAttr(tr, 1)
			name, ok2 := traverseAttr(tr, 2)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: incomplete data reference", in.Path)
			}
			if _, ok := in.Mod.Data[typ+"."+name]; !ok {
				return nil, fmt.Errorf("%s: no data.%s.%s", in.Path, typ, name)
			}
			addRef(data, typ+"."+name, tr, 3)
		case "path":
			vars["path"] = cty.ObjectVal(map[string]cty.Value{
				"module": cty.StringVal(in.Mod.Dir), "root": cty.StringVal(in.root().Mod.Dir), "cwd": cty.StringVal(in.root().Mod.Dir)})
		case "count", "each", "self", "terraform":
			return nil, fmt.Errorf("%s: %s is not available here", in.Path, root)
		default:
			name, ok := traverseAttr(tr, 1)
			if !ok {
				return nil, fmt.Errorf("%s: unknown reference %q", in.Path, root)
			}
			ref := root + "." + name
			if _, ok := in.Mod.Resources[ref]; !ok {
				return nil, fmt.Errorf("%s: unknown reference %s", in.Path, ref)
			}
			addRef(resources, ref, tr, 2)
		}
	}
	if len(needVars) > 0 {
		obj := map[string]cty.Value{}
		for name := range needVars {
			v, err := in.Variable(name)
			if err != nil {
				return nil, err
			}
			obj[name] = v
		}
		vars["var"] = cty.ObjectVal(obj)
	}
	if len(locals) > 0 {
		obj := map[string]cty.Value{}
		for name := range locals {
			v, err := in.local(name)
			if err != nil {
				return nil, err
			}
			obj[name] = v
		}
		vars["local"] = cty.ObjectVal(obj)
	}
	if len(mods) > 0 {
		obj := map[string]cty.Value{}
		for name, outs := range mods {
			c, err := in.Child(name)
			if err != nil {
				return nil, err
			}
			o := map[string]cty.Value{}
			for out := range outs {
				if o[out], err = c.Output(out); err != nil {
					return nil, err
				}
			}
			obj[name] = objectOf(o)
		}
		vars["module"] = cty.ObjectVal(obj)
	}
	byType := map[string]map[string]cty.Value{}
	for ref, r := range resources {
		typ, name, _ := strings.Cut(ref, ".")
		v, err := in.resourceValue(ref, r)
		if err != nil {
			return nil, err
		}
		if byType[typ] == nil {
			byType[typ] = map[string]cty.Value{}
		}
		byType[typ][name] = v
	}
	for typ, objs := range byType {
		vars[typ] = cty.ObjectVal(objs)
	}
	if len(data) > 0 {
		dt := map[string]map[string]cty.Value{}
		for ref, r := range data {
			typ, name, _ := strings.Cut(ref, ".")
			if r.whole {
				return nil, fmt.Errorf("%s: data.%s is used as a whole; refer to its attributes", in.Path, ref)
			}
			b := in.Mod.Data[ref]
			if _, ok := b.Body.Attributes["count"]; ok {
				return nil, fmt.Errorf("%s: data.%s: count on data sources is not supported here", in.Path, ref)
			}
			if _, ok := b.Body.Attributes["for_each"]; ok {
				return nil, fmt.Errorf("%s: data.%s: for_each on data sources is not supported here", in.Path, ref)
			}
			if len(r.keys) > 0 {
				return nil, fmt.Errorf("%s: data.%s is indexed but has no count or for_each", in.Path, ref)
			}
			obj := map[string]cty.Value{}
			for a := range r.attrs {
				obj[a] = in.symbol("data."+ref, "", a)
			}
			v := objectOf(obj)
			if dt[typ] == nil {
				dt[typ] = map[string]cty.Value{}
			}
			dt[typ][name] = v
		}
		obj := map[string]cty.Value{}
		for typ, objs := range dt {
			obj[typ] = cty.ObjectVal(objs)
		}
		vars["data"] = cty.ObjectVal(obj)
	}
	return &hcl.EvalContext{Variables: vars, Functions: Functions()}, nil
}

// childOutputs lists the outputs of module call name; an error
// instantiating it is the caller's error.
func (in *Instance) childOutputs(name string) (map[string]*hclsyntax.Block, error) {
	c, err := in.Child(name)
	if err != nil {
		return nil, err
	}
	return c.Mod.Outputs, nil
}

func (in *Instance) root() *Instance {
	for in.parent != nil {
		in = in.parent
	}
	return in
}

// resourceValue builds what a reference to resource ref reads: an object
// of the attributes read (of all configured ones and id when it is read as
// a whole or by a computed index); for a counted resource, a tuple of one object per
// index; for a for_each one, an object of one per key. Each instance is
// evaluated with its own count.index or each, and an index the
// configuration does not have fails as it does in Terraform.
func (in *Instance) resourceValue(ref string, r *refs) (cty.Value, error) {
	b := in.Mod.Resources[ref]
	mode, keys, err := in.expansion(ref, b)
	if err != nil {
		return cty.NilVal, err
	}
	if r.whole {
		// Read without a static attribute (an index computed from an
		// expression, a whole instance): every configured argument and
		// id; reading any other attribute then fails, loudly.
		r.attrs["id"] = true
		for a := range b.Body.Attributes {
			if !metaArgs[a] {
				r.attrs[a] = true
			}
		}
	}
	build := func(k instanceKey) (cty.Value, error) {
		obj := map[string]cty.Value{}
		for a := range r.attrs {
			v, err := in.resourceAttr(ref, k, a)
			if err != nil {
				return cty.NilVal, err
			}
			obj[a] = v
		}
		return objectOf(obj), nil
	}
	switch mode {
	case "count":
		if len(keys) == 0 {
			return cty.EmptyTupleVal, nil
		}
		elems := make([]cty.Value, len(keys))
		for i, k := range keys {
			if elems[i], err = build(k); err != nil {
				return cty.NilVal, err
			}
		}
		return cty.TupleVal(elems), nil
	case "for_each":
		byKey := map[string]cty.Value{}
		for _, k := range keys {
			if byKey[k.key.AsString()], err = build(k); err != nil {
				return cty.NilVal, err
			}
		}
		return objectOf(byKey), nil
	}
	if len(r.keys) > 0 {
		return cty.NilVal, fmt.Errorf("%s: %s is indexed but has no count or for_each", in.Path, ref)
	}
	return build(keys[0])
}

func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

// eval evaluates expr in this Instance; extra adds names such as each,
// count or a dynamic block's iterator.
func (in *Instance) eval(expr hcl.Expression, extra map[string]cty.Value) (cty.Value, error) {
	ctx, err := in.evalContext(expr, extra)
	if err != nil {
		return cty.NilVal, err
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s: %s", in.Path, diags.Error())
	}
	return v, nil
}

// Scope is a body (a resource or a nested block) with the names its
// expressions may use beyond the module's own.
type Scope struct {
	In    *Instance
	Body  *hclsyntax.Body
	Extra map[string]cty.Value
	Where string
}

// attr evaluates attribute name; ok is false when it is not set.
func (s Scope) Attr(name string) (cty.Value, bool, error) {
	a, ok := s.Body.Attributes[name]
	if !ok {
		return cty.NilVal, false, nil
	}
	v, err := s.In.eval(a.Expr, s.Extra)
	if err != nil {
		return cty.NilVal, true, fmt.Errorf("%s.%s: %w", s.Where, name, err)
	}
	return v, true, nil
}

// str evaluates attribute name as a known string ("" and false when unset).
func (s Scope) Str(name string) (string, bool, error) {
	v, ok, err := s.Attr(name)
	if err != nil || !ok {
		return "", ok, err
	}
	if v.IsNull() {
		return "", false, nil
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil || !sv.IsKnown() {
		return "", true, fmt.Errorf("%s.%s is not a known string: %#v", s.Where, name, v)
	}
	return sv.AsString(), true, nil
}

// num evaluates attribute name as a number.
func (s Scope) Num(name string) (*big.Float, bool, error) {
	v, ok, err := s.Attr(name)
	if err != nil || !ok {
		return nil, ok, err
	}
	nv, err := convert.Convert(v, cty.Number)
	if err != nil || nv.IsNull() || !nv.IsKnown() {
		return nil, true, fmt.Errorf("%s.%s is not a known number: %#v", s.Where, name, v)
	}
	return nv.AsBigFloat(), true, nil
}

// blocks returns the nested blocks of type typ, static ones and those a
// dynamic block generates, each with its iterator in scope.
func (s Scope) Blocks(typ string) ([]Scope, error) {
	var out []Scope
	for _, b := range s.Body.Blocks {
		switch {
		case b.Type == typ:
			out = append(out, Scope{In: s.In, Body: b.Body, Extra: s.Extra, Where: s.Where + "." + typ})
		case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == typ:
			iter := typ
			if a, ok := b.Body.Attributes["iterator"]; ok {
				iter = hcl.ExprAsKeyword(a.Expr)
			}
			fe, ok := b.Body.Attributes["for_each"]
			if !ok {
				return nil, fmt.Errorf("%s: dynamic %q without for_each", s.Where, typ)
			}
			coll, err := s.In.eval(fe.Expr, s.Extra)
			if err != nil {
				return nil, fmt.Errorf("%s: dynamic %q for_each: %w", s.Where, typ, err)
			}
			var content *hclsyntax.Block
			for _, cb := range b.Body.Blocks {
				if cb.Type == "content" {
					content = cb
				}
			}
			if content == nil {
				return nil, fmt.Errorf("%s: dynamic %q without content", s.Where, typ)
			}
			if coll.IsNull() || !coll.IsKnown() || !coll.CanIterateElements() {
				return nil, fmt.Errorf("%s: dynamic %q: for_each is not a known collection: %#v", s.Where, typ, coll)
			}
			for it := coll.ElementIterator(); it.Next(); {
				k, v := it.Element()
				extra := map[string]cty.Value{}
				for n, ev := range s.Extra {
					extra[n] = ev
				}
				extra[iter] = cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})
				out = append(out, Scope{In: s.In, Body: content.Body, Extra: extra, Where: fmt.Sprintf("%s.%s[%s]", s.Where, typ, k.GoString())})
			}
		}
	}
	return out, nil
}

// one returns the single nested block of type typ.
func (s Scope) One(typ string) (Scope, error) {
	bs, err := s.Blocks(typ)
	if err != nil {
		return Scope{}, err
	}
	if len(bs) != 1 {
		return Scope{}, fmt.Errorf("%s: want exactly one %q block, found %d", s.Where, typ, len(bs))
	}
	return bs[0], nil
}

// Resource is one instance of a resource block (count and for_each
// expanded) in a module Instance.
type Resource struct {
	Scope
	Type, Name string
	Key        string // count index or for_each key; "" for a single Instance
}

// ID names the resource block: "dev.iam/google_service_account.loader".
func (r Resource) ID() string { return r.In.Path + "/" + r.Type + "." + r.Name }

// Resources expands every resource block of type typ (every type when typ
// is "") in this Instance.
func (in *Instance) Resources(typ string) ([]Resource, error) {
	refs := make([]string, 0, len(in.Mod.Resources))
	for ref := range in.Mod.Resources {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	var out []Resource
	for _, ref := range refs {
		t, name, _ := strings.Cut(ref, ".")
		if typ != "" && t != typ {
			continue
		}
		b := in.Mod.Resources[ref]
		base := Scope{In: in, Body: b.Body, Where: in.Path + "/" + ref}
		mode, keys, err := in.expansion(ref, b)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			s := base
			s.Extra = k.extra
			s.Where = base.Where + k.label
			key := ""
			switch mode {
			case "count":
				key = strings.Trim(k.label, "[]")
			case "for_each":
				key = k.key.AsString()
			}
			out = append(out, Resource{Scope: s, Type: t, Name: name, Key: key})
		}
	}
	return out, nil
}

// AllResources expands the resources of type typ in every module Instance
// under in.
func (in *Instance) AllResources(typ string) ([]Resource, error) {
	var out []Resource
	err := in.Walk(func(i *Instance) error {
		rs, err := i.Resources(typ)
		out = append(out, rs...)
		return err
	})
	return out, err
}

// --- functions ---------------------------------------------------------------

// The Terraform functions this configuration uses. A function missing here
// makes evaluation fail, loudly.
func Functions() map[string]function.Function {
	return map[string]function.Function{
		"abs":        stdlib.AbsoluteFunc,
		"alltrue":    allTrueFunc,
		"can":        tryfunc.CanFunc,
		"ceil":       stdlib.CeilFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"compact":    stdlib.CompactFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"distinct":   stdlib.DistinctFunc,
		"element":    stdlib.ElementFunc,
		"floor":      stdlib.FloorFunc,
		"format":     stdlib.FormatFunc,
		"join":       stdlib.JoinFunc,
		"jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"keys":       stdlib.KeysFunc,
		"length":     lengthFunc,
		"lower":      stdlib.LowerFunc,
		"max":        stdlib.MaxFunc,
		"merge":      stdlib.MergeFunc,
		"sort":       stdlib.SortFunc,
		"range":      stdlib.RangeFunc,
		"min":        stdlib.MinFunc,
		"regex":      stdlib.RegexFunc,
		"replace":    stdlib.ReplaceFunc,
		"split":      stdlib.SplitFunc,
		"substr":     stdlib.SubstrFunc,
		"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":      stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"tonumber":   stdlib.MakeToFunc(cty.Number),
		"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring":   stdlib.MakeToFunc(cty.String),
		"trimprefix": stdlib.TrimPrefixFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"try":        tryfunc.TryFunc,
		"upper":      stdlib.UpperFunc,
		"values":     stdlib.ValuesFunc,
	}
}

// lengthFunc is Terraform's length: characters of a string, elements of a
// collection.
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})

// allTrueFunc is Terraform's alltrue.
var allTrueFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if v.IsNull() || v.False() {
				return cty.False, nil
			}
		}
		return cty.True, nil
	},
})
