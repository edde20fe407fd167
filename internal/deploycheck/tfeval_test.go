package deploycheck

// A small evaluator for this repository's Terraform: enough of Terraform's
// semantics to compute, offline, what each environment would ask the
// provider for. Variables come from an environment's example.tfvars and the
// variables' defaults (converted to their declared types, optional
// attributes included); locals, module inputs and outputs are evaluated
// through the module tree. Attributes that only the cloud knows (a service
// account's email, a service's URL, a project's number) evaluate to a
// placeholder naming where they come from, "<dev.iam/google_service_account.loader.email>",
// so a test can tell which resource an expression points at. Attributes set
// in configuration (a topic's name, a dataset's id) evaluate to their
// configured value.
//
// What it does not do: providers, plan, apply, count/for_each on module
// calls, splat expressions over resources. A construct it does not know is
// an error, never a silent pass.

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

// tfModule is one Terraform module directory, parsed.
type tfModule struct {
	dir       string
	inspect   *tfconfig.Module
	files     map[string]*hclsyntax.Body
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	outputs   map[string]*hclsyntax.Block
	calls     map[string]*hclsyntax.Block
	resources map[string]*hclsyntax.Block // "type.name"
	data      map[string]*hclsyntax.Block // "type.name"
	terraform []*hclsyntax.Block
}

var (
	modulesMu sync.Mutex
	modules   = map[string]*tfModule{}
)

// loadModule parses the module in dir (once per test binary).
func loadModule(dir string) (*tfModule, error) {
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
	m := &tfModule{dir: dir, inspect: insp, files: map[string]*hclsyntax.Body{},
		variables: map[string]*hclsyntax.Block{}, locals: map[string]*hclsyntax.Attribute{},
		outputs: map[string]*hclsyntax.Block{}, calls: map[string]*hclsyntax.Block{},
		resources: map[string]*hclsyntax.Block{}, data: map[string]*hclsyntax.Block{}}
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
		m.files[p] = body
		for _, b := range body.Blocks {
			switch b.Type {
			case "variable":
				m.variables[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					if _, dup := m.locals[name]; dup {
						return nil, fmt.Errorf("%s: local.%s declared twice", dir, name)
					}
					m.locals[name] = a
				}
			case "output":
				m.outputs[b.Labels[0]] = b
			case "module":
				m.calls[b.Labels[0]] = b
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = b
			case "data":
				m.data[b.Labels[0]+"."+b.Labels[1]] = b
			case "terraform":
				m.terraform = append(m.terraform, b)
			}
		}
	}
	modules[dir] = m
	return m, nil
}

// varType is the declared type of variable name, with its optional
// attributes' defaults (cty.DynamicPseudoType when undeclared).
func (m *tfModule) varType(name string) (cty.Type, *typeexpr.Defaults, error) {
	b := m.variables[name]
	a, ok := b.Body.Attributes["type"]
	if !ok {
		return cty.DynamicPseudoType, nil, nil
	}
	ty, defs, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
	if diags.HasErrors() {
		return cty.NilType, nil, fmt.Errorf("%s: variable %q type: %s", m.dir, name, diags.Error())
	}
	return ty, defs, nil
}

// convertVar converts a value given for variable name to its type, filling
// optional attributes' defaults as Terraform does.
func (m *tfModule) convertVar(name string, v cty.Value) (cty.Value, error) {
	ty, defs, err := m.varType(name)
	if err != nil {
		return cty.NilVal, err
	}
	if defs != nil {
		v = defs.Apply(v)
	}
	out, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: variable %q: %v", m.dir, name, err)
	}
	return out, nil
}

// defaultOf evaluates variable name's default; ok is false when it has none.
func (m *tfModule) defaultOf(name string) (cty.Value, bool, error) {
	a, ok := m.variables[name].Body.Attributes["default"]
	if !ok {
		return cty.NilVal, false, nil
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{Functions: tfFunctions()})
	if diags.HasErrors() {
		return cty.NilVal, false, fmt.Errorf("%s: default of %q: %s", m.dir, name, diags.Error())
	}
	return v, true, nil
}

// validationFailure is one validation block whose condition is false.
type validationFailure struct {
	Variable string
	Message  string
}

// validate evaluates the validation blocks of variable name for value v the
// way Terraform does at plan time (only var.<name> is in scope) and returns
// the error messages a person would see.
func (m *tfModule) validate(name string, v cty.Value) ([]validationFailure, error) {
	b, ok := m.variables[name]
	if !ok {
		return nil, fmt.Errorf("%s: no variable %q", m.dir, name)
	}
	cv, err := m.convertVar(name, v)
	if err != nil {
		return nil, err
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: cv})},
		Functions: tfFunctions(),
	}
	var out []validationFailure
	for _, vb := range b.Body.Blocks {
		if vb.Type != "validation" {
			continue
		}
		cond, diags := vb.Body.Attributes["condition"].Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: variable %q: condition: %s", m.dir, name, diags.Error())
		}
		cond, err := convert.Convert(cond, cty.Bool)
		if err != nil || cond.IsNull() || !cond.IsKnown() {
			return nil, fmt.Errorf("%s: variable %q: condition is not a known bool (%#v)", m.dir, name, cond)
		}
		if cond.True() {
			continue
		}
		msg, diags := vb.Body.Attributes["error_message"].Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: variable %q: error_message: %s", m.dir, name, diags.Error())
		}
		out = append(out, validationFailure{Variable: name, Message: msg.AsString()})
	}
	return out, nil
}

// instance is a module with its input values: the root of an environment,
// or a module call below it.
type instance struct {
	mod      *tfModule
	path     string // "dev", "dev.loader"
	parent   *instance
	call     *hclsyntax.Block     // the module block that made it; nil for a root
	vars     map[string]cty.Value // evaluated input variables (all of them for a root)
	locals   map[string]cty.Value
	children map[string]*instance
	attrs    map[string]cty.Value // resource attributes evaluated from configuration
	busy     map[string]bool
}

// newRoot instantiates the root module in dir with the variable values of
// the .tfvars file tfvars, then overrides. Every value must pass its
// variable's validation: an example that a plan would reject is an error.
func newRoot(path, dir, tfvars string, overrides map[string]cty.Value) (*instance, error) {
	m, err := loadModule(dir)
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
			if _, ok := m.variables[name]; !ok {
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
		if _, ok := m.variables[name]; !ok {
			return nil, fmt.Errorf("override %q is not a variable of %s", name, dir)
		}
		given[name] = v
	}
	vars := map[string]cty.Value{}
	for name := range m.variables {
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
		fails, err := m.validate(name, v)
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

func newInstance(path string, m *tfModule, parent *instance, vars map[string]cty.Value) *instance {
	return &instance{mod: m, path: path, parent: parent, vars: vars,
		locals: map[string]cty.Value{}, children: map[string]*instance{},
		attrs: map[string]cty.Value{}, busy: map[string]bool{}}
}

// metaArgs are module call arguments that are not input variables.
var metaArgs = map[string]bool{"source": true, "version": true, "depends_on": true, "providers": true, "count": true, "for_each": true}

// child instantiates module call name.
func (in *instance) child(name string) (*instance, error) {
	if c, ok := in.children[name]; ok {
		return c, nil
	}
	call, ok := in.mod.calls[name]
	if !ok {
		return nil, fmt.Errorf("%s: no module %q", in.path, name)
	}
	if _, ok := call.Body.Attributes["count"]; ok {
		return nil, fmt.Errorf("%s: module %q: count on module calls is not supported here", in.path, name)
	}
	if _, ok := call.Body.Attributes["for_each"]; ok {
		return nil, fmt.Errorf("%s: module %q: for_each on module calls is not supported here", in.path, name)
	}
	srcAttr, ok := call.Body.Attributes["source"]
	if !ok {
		return nil, fmt.Errorf("%s: module %q has no source", in.path, name)
	}
	src, diags := srcAttr.Expr.Value(nil)
	if diags.HasErrors() || src.Type() != cty.String {
		return nil, fmt.Errorf("%s: module %q: source must be a literal string", in.path, name)
	}
	if !strings.HasPrefix(src.AsString(), "./") && !strings.HasPrefix(src.AsString(), "../") {
		return nil, fmt.Errorf("%s: module %q: only local sources are evaluated, got %q", in.path, name, src.AsString())
	}
	m, err := loadModule(filepath.Join(in.mod.dir, src.AsString()))
	if err != nil {
		return nil, err
	}
	for arg := range call.Body.Attributes {
		if _, ok := m.variables[arg]; !ok && !metaArgs[arg] {
			return nil, fmt.Errorf("%s: module %q: argument %q is not a variable of %s", in.path, name, arg, m.dir)
		}
	}
	c := newInstance(in.path+"."+name, m, in, map[string]cty.Value{})
	c.call = call
	in.children[name] = c
	return c, nil
}

// variable is the value of input variable name: for a module call, its
// argument evaluated in the calling module (or its default), converted to
// its type and validated. Evaluated on first use, as Terraform does, so
// that modules may feed each other (loader URL to pubsub, topic to loader).
func (in *instance) variable(name string) (cty.Value, error) {
	if v, ok := in.vars[name]; ok {
		return v, nil
	}
	if _, ok := in.mod.variables[name]; !ok || in.call == nil {
		return cty.NilVal, fmt.Errorf("%s: no variable %q", in.path, name)
	}
	key := "var." + name
	if in.busy[key] {
		return cty.NilVal, fmt.Errorf("%s: var.%s depends on itself", in.path, name)
	}
	in.busy[key] = true
	defer delete(in.busy, key)
	var v cty.Value
	if a, ok := in.call.Body.Attributes[name]; ok {
		var err error
		if v, err = in.parent.eval(a.Expr, nil); err != nil {
			return cty.NilVal, fmt.Errorf("%s: argument %q: %w", in.path, name, err)
		}
	} else {
		d, has, err := in.mod.defaultOf(name)
		if err != nil {
			return cty.NilVal, err
		}
		if !has {
			return cty.NilVal, fmt.Errorf("%s: required variable %q is not set", in.path, name)
		}
		v = d
	}
	fails, err := in.mod.validate(name, v)
	if err != nil {
		return cty.NilVal, err
	}
	for _, f := range fails {
		return cty.NilVal, fmt.Errorf("%s: var.%s fails validation: %s", in.path, name, f.Message)
	}
	if v, err = in.mod.convertVar(name, v); err != nil {
		return cty.NilVal, err
	}
	in.vars[name] = v
	return v, nil
}

// checkInputs evaluates every input variable of every module instance, so
// that a missing argument or a failing validation anywhere is reported.
func (in *instance) checkInputs() error {
	return in.walk(func(i *instance) error {
		for name := range i.mod.variables {
			if _, err := i.variable(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// walk calls fn for in and every module instance below it, depth first.
func (in *instance) walk(fn func(*instance) error) error {
	if err := fn(in); err != nil {
		return err
	}
	names := make([]string, 0, len(in.mod.calls))
	for name := range in.mod.calls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c, err := in.child(name)
		if err != nil {
			return err
		}
		if err := c.walk(fn); err != nil {
			return err
		}
	}
	return nil
}

func (in *instance) local(name string) (cty.Value, error) {
	if v, ok := in.locals[name]; ok {
		return v, nil
	}
	a, ok := in.mod.locals[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: no local.%s", in.path, name)
	}
	key := "local." + name
	if in.busy[key] {
		return cty.NilVal, fmt.Errorf("%s: local.%s refers to itself", in.path, name)
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

func (in *instance) output(name string) (cty.Value, error) {
	b, ok := in.mod.outputs[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: no output %q", in.path, name)
	}
	return in.eval(b.Body.Attributes["value"].Expr, nil)
}

// symbol is the placeholder for an attribute only the cloud knows.
func (in *instance) symbol(ref, attr string) cty.Value {
	return cty.StringVal(fmt.Sprintf("<%s/%s.%s>", in.path, ref, attr))
}

// symbolRE matches one placeholder: instance path, resource type (or
// data.type), resource name, attribute.
var symbolRE = regexp.MustCompile(`<([a-z0-9_.]+)/((?:data\.)?[a-z0-9_]+)\.([a-z0-9_]+)\.([a-z0-9_]+)>`)

// resourceAttr is the value of attribute attr of resource ref ("type.name"):
// its configured value when it is a plain top-level argument of a resource
// without count or for_each, a placeholder otherwise.
func (in *instance) resourceAttr(ref, attr string) (cty.Value, error) {
	b := in.mod.resources[ref]
	a, configured := b.Body.Attributes[attr]
	_, counted := b.Body.Attributes["count"]
	_, forEach := b.Body.Attributes["for_each"]
	if !configured || counted || forEach || metaArgs[attr] {
		return in.symbol(ref, attr), nil
	}
	key := ref + "." + attr
	if v, ok := in.attrs[key]; ok {
		return v, nil
	}
	if in.busy[key] {
		return cty.NilVal, fmt.Errorf("%s: %s refers to itself", in.path, key)
	}
	in.busy[key] = true
	defer delete(in.busy, key)
	v, err := in.eval(a.Expr, nil)
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
// from it and the instance keys it indexes it by.
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

// evalContext builds the scope expr needs in this instance.
func (in *instance) evalContext(expr hcl.Expression, extra map[string]cty.Value) (*hcl.EvalContext, error) {
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
				return nil, fmt.Errorf("%s: bare reference to var", in.path)
			}
			needVars[name] = true
		case "local":
			name, ok := traverseAttr(tr, 1)
			if !ok {
				return nil, fmt.Errorf("%s: bare reference to local", in.path)
			}
			locals[name] = true
		case "module":
			name, ok := traverseAttr(tr, 1)
			if !ok {
				return nil, fmt.Errorf("%s: bare reference to module", in.path)
			}
			if mods[name] == nil {
				mods[name] = map[string]bool{}
			}
			if out, ok := traverseAttr(tr, 2); ok {
				mods[name][out] = true
			} else {
				for o := range in.mustChildModule(name) {
					mods[name][o] = true
				}
			}
		case "data":
			typ, ok1 := traverseAttr(tr, 1)
			name, ok2 := traverseAttr(tr, 2)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: incomplete data reference", in.path)
			}
			if _, ok := in.mod.data[typ+"."+name]; !ok {
				return nil, fmt.Errorf("%s: no data.%s.%s", in.path, typ, name)
			}
			addRef(data, typ+"."+name, tr, 3)
		case "path":
			vars["path"] = cty.ObjectVal(map[string]cty.Value{
				"module": cty.StringVal(in.mod.dir), "root": cty.StringVal(in.root().mod.dir), "cwd": cty.StringVal(in.root().mod.dir)})
		case "count", "each", "self", "terraform":
			return nil, fmt.Errorf("%s: %s is not available here", in.path, root)
		default:
			name, ok := traverseAttr(tr, 1)
			if !ok {
				return nil, fmt.Errorf("%s: unknown reference %q", in.path, root)
			}
			ref := root + "." + name
			if _, ok := in.mod.resources[ref]; !ok {
				return nil, fmt.Errorf("%s: unknown reference %s", in.path, ref)
			}
			addRef(resources, ref, tr, 2)
		}
	}
	if len(needVars) > 0 {
		obj := map[string]cty.Value{}
		for name := range needVars {
			v, err := in.variable(name)
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
			c, err := in.child(name)
			if err != nil {
				return nil, err
			}
			o := map[string]cty.Value{}
			for out := range outs {
				if o[out], err = c.output(out); err != nil {
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
		v, err := in.refValue(ref, r, func(attr string) (cty.Value, error) { return in.resourceAttr(ref, attr) })
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
			v, err := in.refValue(ref, r, func(attr string) (cty.Value, error) { return in.symbol("data."+ref, attr), nil })
			if err != nil {
				return nil, err
			}
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
	return &hcl.EvalContext{Variables: vars, Functions: tfFunctions()}, nil
}

func (in *instance) mustChildModule(name string) map[string]*hclsyntax.Block {
	c, err := in.child(name)
	if err != nil {
		return nil
	}
	return c.mod.outputs
}

func (in *instance) root() *instance {
	for in.parent != nil {
		in = in.parent
	}
	return in
}

// refValue builds the object (or the instances of a counted resource) that
// a reference reads from.
func (in *instance) refValue(ref string, r *refs, attr func(string) (cty.Value, error)) (cty.Value, error) {
	if r.whole {
		return cty.NilVal, fmt.Errorf("%s: %s is used as a whole; refer to its attributes", in.path, ref)
	}
	obj := map[string]cty.Value{}
	for a := range r.attrs {
		v, err := attr(a)
		if err != nil {
			return cty.NilVal, err
		}
		obj[a] = v
	}
	one := objectOf(obj)
	if len(r.keys) == 0 {
		return one, nil
	}
	// Indexed: a counted resource (number keys) or a for_each one (string keys).
	var maxIdx int64 = -1
	byKey := map[string]cty.Value{}
	for _, k := range r.keys {
		switch k.Type() {
		case cty.Number:
			i, _ := k.AsBigFloat().Int64()
			if i > maxIdx {
				maxIdx = i
			}
		case cty.String:
			byKey[k.AsString()] = one
		default:
			return cty.NilVal, fmt.Errorf("%s: %s indexed by %#v", in.path, ref, k)
		}
	}
	if len(byKey) > 0 {
		if maxIdx >= 0 {
			return cty.NilVal, fmt.Errorf("%s: %s indexed by numbers and strings", in.path, ref)
		}
		return cty.ObjectVal(byKey), nil
	}
	elems := make([]cty.Value, maxIdx+1)
	for i := range elems {
		elems[i] = one
	}
	return cty.TupleVal(elems), nil
}

func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

// eval evaluates expr in this instance; extra adds names such as each,
// count or a dynamic block's iterator.
func (in *instance) eval(expr hcl.Expression, extra map[string]cty.Value) (cty.Value, error) {
	ctx, err := in.evalContext(expr, extra)
	if err != nil {
		return cty.NilVal, err
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s: %s", in.path, diags.Error())
	}
	return v, nil
}

// scope is a body (a resource or a nested block) with the names its
// expressions may use beyond the module's own.
type scope struct {
	in    *instance
	body  *hclsyntax.Body
	extra map[string]cty.Value
	where string
}

// attr evaluates attribute name; ok is false when it is not set.
func (s scope) attr(name string) (cty.Value, bool, error) {
	a, ok := s.body.Attributes[name]
	if !ok {
		return cty.NilVal, false, nil
	}
	v, err := s.in.eval(a.Expr, s.extra)
	if err != nil {
		return cty.NilVal, true, fmt.Errorf("%s.%s: %w", s.where, name, err)
	}
	return v, true, nil
}

// str evaluates attribute name as a known string ("" and false when unset).
func (s scope) str(name string) (string, bool, error) {
	v, ok, err := s.attr(name)
	if err != nil || !ok {
		return "", ok, err
	}
	if v.IsNull() {
		return "", false, nil
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil || !sv.IsKnown() {
		return "", true, fmt.Errorf("%s.%s is not a known string: %#v", s.where, name, v)
	}
	return sv.AsString(), true, nil
}

// num evaluates attribute name as a number.
func (s scope) num(name string) (*big.Float, bool, error) {
	v, ok, err := s.attr(name)
	if err != nil || !ok {
		return nil, ok, err
	}
	nv, err := convert.Convert(v, cty.Number)
	if err != nil || nv.IsNull() || !nv.IsKnown() {
		return nil, true, fmt.Errorf("%s.%s is not a known number: %#v", s.where, name, v)
	}
	return nv.AsBigFloat(), true, nil
}

// blocks returns the nested blocks of type typ, static ones and those a
// dynamic block generates, each with its iterator in scope.
func (s scope) blocks(typ string) ([]scope, error) {
	var out []scope
	for _, b := range s.body.Blocks {
		switch {
		case b.Type == typ:
			out = append(out, scope{in: s.in, body: b.Body, extra: s.extra, where: s.where + "." + typ})
		case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == typ:
			iter := typ
			if a, ok := b.Body.Attributes["iterator"]; ok {
				iter = hcl.ExprAsKeyword(a.Expr)
			}
			fe, ok := b.Body.Attributes["for_each"]
			if !ok {
				return nil, fmt.Errorf("%s: dynamic %q without for_each", s.where, typ)
			}
			coll, err := s.in.eval(fe.Expr, s.extra)
			if err != nil {
				return nil, fmt.Errorf("%s: dynamic %q for_each: %w", s.where, typ, err)
			}
			var content *hclsyntax.Block
			for _, cb := range b.Body.Blocks {
				if cb.Type == "content" {
					content = cb
				}
			}
			if content == nil {
				return nil, fmt.Errorf("%s: dynamic %q without content", s.where, typ)
			}
			if coll.IsNull() || !coll.IsKnown() || !coll.CanIterateElements() {
				return nil, fmt.Errorf("%s: dynamic %q: for_each is not a known collection: %#v", s.where, typ, coll)
			}
			for it := coll.ElementIterator(); it.Next(); {
				k, v := it.Element()
				extra := map[string]cty.Value{}
				for n, ev := range s.extra {
					extra[n] = ev
				}
				extra[iter] = cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})
				out = append(out, scope{in: s.in, body: content.Body, extra: extra, where: fmt.Sprintf("%s.%s[%s]", s.where, typ, k.GoString())})
			}
		}
	}
	return out, nil
}

// one returns the single nested block of type typ.
func (s scope) one(typ string) (scope, error) {
	bs, err := s.blocks(typ)
	if err != nil {
		return scope{}, err
	}
	if len(bs) != 1 {
		return scope{}, fmt.Errorf("%s: want exactly one %q block, found %d", s.where, typ, len(bs))
	}
	return bs[0], nil
}

// resource is one instance of a resource block (count and for_each
// expanded) in a module instance.
type resource struct {
	scope
	Type, Name string
	Key        string // count index or for_each key; "" for a single instance
}

// ID names the resource block: "dev.iam/google_service_account.loader".
func (r resource) ID() string { return r.in.path + "/" + r.Type + "." + r.Name }

// resources expands every resource block of type typ (every type when typ
// is "") in this instance.
func (in *instance) resources(typ string) ([]resource, error) {
	refs := make([]string, 0, len(in.mod.resources))
	for ref := range in.mod.resources {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	var out []resource
	for _, ref := range refs {
		t, name, _ := strings.Cut(ref, ".")
		if typ != "" && t != typ {
			continue
		}
		b := in.mod.resources[ref]
		base := scope{in: in, body: b.Body, where: in.path + "/" + ref}
		if a, ok := b.Body.Attributes["count"]; ok {
			n, err := in.eval(a.Expr, nil)
			if err != nil {
				return nil, fmt.Errorf("%s count: %w", ref, err)
			}
			count, _ := n.AsBigFloat().Int64()
			for i := int64(0); i < count; i++ {
				s := base
				s.extra = map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(i)})}
				s.where = fmt.Sprintf("%s[%d]", base.where, i)
				out = append(out, resource{scope: s, Type: t, Name: name, Key: strconv.FormatInt(i, 10)})
			}
			continue
		}
		if a, ok := b.Body.Attributes["for_each"]; ok {
			coll, err := in.eval(a.Expr, nil)
			if err != nil {
				return nil, fmt.Errorf("%s for_each: %w", ref, err)
			}
			if !coll.IsKnown() || coll.IsNull() || !coll.CanIterateElements() {
				return nil, fmt.Errorf("%s for_each is not a known collection", ref)
			}
			for it := coll.ElementIterator(); it.Next(); {
				k, v := it.Element()
				if coll.Type().IsSetType() {
					k = v
				}
				s := base
				s.extra = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
				s.where = fmt.Sprintf("%s[%s]", base.where, k.GoString())
				out = append(out, resource{scope: s, Type: t, Name: name, Key: k.AsString()})
			}
			continue
		}
		out = append(out, resource{scope: base, Type: t, Name: name})
	}
	return out, nil
}

// allResources expands the resources of type typ in every module instance
// under in.
func (in *instance) allResources(typ string) ([]resource, error) {
	var out []resource
	err := in.walk(func(i *instance) error {
		rs, err := i.resources(typ)
		out = append(out, rs...)
		return err
	})
	return out, err
}

// --- functions ---------------------------------------------------------------

// The Terraform functions this configuration uses. A function missing here
// makes evaluation fail, loudly.
func tfFunctions() map[string]function.Function {
	return map[string]function.Function{
		"abs":        stdlib.AbsoluteFunc,
		"alltrue":    allTrueFunc,
		"can":        tryfunc.CanFunc,
		"ceil":       stdlib.CeilFunc,
		"compact":    stdlib.CompactFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"distinct":   stdlib.DistinctFunc,
		"floor":      stdlib.FloorFunc,
		"format":     stdlib.FormatFunc,
		"join":       stdlib.JoinFunc,
		"keys":       stdlib.KeysFunc,
		"length":     lengthFunc,
		"lower":      stdlib.LowerFunc,
		"max":        stdlib.MaxFunc,
		"merge":      stdlib.MergeFunc,
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
