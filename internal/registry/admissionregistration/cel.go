package admissionregistration

import (
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/environment"
)

// maxMatchConditions is how many match conditions a webhook or policy may
// have.
const maxMatchConditions = 64

// celExpression is one expression to compile and the types its result may
// have. name is set for a policy's variables only.
type celExpression struct {
	expression string
	returns    []*cel.Type
	name       string
}

func (e *celExpression) GetExpression() string    { return e.expression }
func (e *celExpression) ReturnTypes() []*cel.Type { return e.returns }
func (e *celExpression) GetName() string          { return e.name }

// boolExpression is a validation or a match condition.
func boolExpression(s string) *celExpression {
	return &celExpression{expression: s, returns: []*cel.Type{cel.BoolType}}
}

// stringExpression is a validation's messageExpression.
func stringExpression(s string) *celExpression {
	return &celExpression{expression: s, returns: []*cel.Type{cel.StringType}}
}

// stringOrNullExpression is an audit annotation's value; null means no
// annotation.
func stringOrNullExpression(s string) *celExpression {
	return &celExpression{expression: s, returns: []*cel.Type{cel.StringType, cel.NullType}}
}

// variableExpression is a policy's variable, of any type.
func variableExpression(name, s string) *celExpression {
	return &celExpression{expression: s, returns: []*cel.Type{cel.AnyType, cel.DynType}, name: name}
}

// statelessCompiler compiles expressions that cannot use a policy's
// variables: match conditions, and everything in a policy that declares
// no variables. Building it prepares eight CEL environments, so it is
// built once, on first use.
var statelessCompiler = sync.OnceValue(func() plugincel.Compiler {
	return plugincel.NewCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
})

// newPolicyCompiler returns the compiler for a policy's expressions. With
// variables it is a composited compiler of the policy's own, which records
// each variable's type as it is compiled, so that the expressions after it
// may use `variables.<name>`.
func newPolicyCompiler(hasVariables bool) plugincel.Compiler {
	if !hasVariables {
		return statelessCompiler()
	}
	c, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		// Cannot happen with the base environment; a policy's variables
		// then fail to compile (see validateVariable).
		return statelessCompiler()
	}
	return c
}

// envType is the environment an expression is checked in: the stored
// one, which knows every library any version has offered, for an
// expression the object already had; the one of this version for a new or
// changed one.
func envType(stored sets.Set[string], expression string) environment.Type {
	if stored.Has(expression) {
		return environment.StoredExpressions
	}
	return environment.NewExpressions
}

// compileExpression compiles e and reports a failure at p as upstream
// does, with badValue as the Invalid value.
func compileExpression(c plugincel.Compiler, e plugincel.ExpressionAccessor, decls plugincel.OptionalVariableDeclarations, env environment.Type, badValue string, p *field.Path) field.ErrorList {
	res := c.CompileCELExpression(e, decls, env)
	if res.Error == nil {
		return nil
	}
	return field.ErrorList{celError(p, badValue, res.Error)}
}

func celError(p *field.Path, badValue string, err *apiservercel.Error) *field.Error {
	switch err.Type {
	case apiservercel.ErrorTypeRequired:
		return field.Required(p, err.Detail)
	case apiservercel.ErrorTypeInvalid:
		return field.Invalid(p, badValue, err.Detail)
	default:
		return field.InternalError(p, err)
	}
}

// validateMatchConditions checks a webhook's or a policy's match
// conditions: at most 64, unique qualified names, and each expression a
// CEL boolean over object, oldObject, request, namespaceObject and
// authorizer (and params, for a policy with a paramKind).
func validateMatchConditions(conds []admissionregistrationv1.MatchCondition, hasParams bool, stored sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(conds) > maxMatchConditions {
		errs = append(errs, field.TooMany(p, len(conds), maxMatchConditions))
	}
	names := sets.New[string]()
	for i, mc := range conds {
		cp := p.Index(i)
		if expr := strings.TrimSpace(mc.Expression); expr == "" {
			errs = append(errs, field.Required(cp.Child("expression"), ""))
		} else {
			decls := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}
			errs = append(errs, compileExpression(statelessCompiler(), boolExpression(expr), decls,
				envType(stored, expr), expr, cp.Child("expression"))...)
		}
		if mc.Name == "" {
			errs = append(errs, field.Required(cp.Child("name"), ""))
		} else {
			for _, msg := range validation.IsQualifiedName(mc.Name) {
				errs = append(errs, field.Invalid(cp.Child("name"), mc.Name, msg))
			}
			if names.Has(mc.Name) {
				errs = append(errs, field.Duplicate(cp.Child("name"), mc.Name))
			}
			names.Insert(mc.Name)
		}
	}
	return errs
}
