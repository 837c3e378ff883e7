package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// mapNamespace creates a namespace carrying the label the policies and
// bindings of a test select, so that they touch nothing else.
func mapNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{name: "true"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
}

// mapDeployment is the e2e test's deployment: one replica of nginx.
func mapDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": "nginx"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:latest"}}},
			},
		},
	}
}

// mapPolicy is a policy on the creates and updates of deployments in
// the namespaces labelled ns=true, as the e2e test builds them.
func mapPolicy(name, ns string, mutations ...admissionregistrationv1.Mutation) *admissionregistrationv1.MutatingAdmissionPolicy {
	return &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{ns: "true"}},
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
					},
				}},
			},
			Mutations: mutations,
		},
	}
}

func mapBinding(name, ns, policy string) *admissionregistrationv1.MutatingAdmissionPolicyBinding {
	return &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: policy,
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{ns: "true"}},
			},
		},
	}
}

func applyConfiguration(expr string) admissionregistrationv1.Mutation {
	return admissionregistrationv1.Mutation{
		PatchType:          admissionregistrationv1.PatchTypeApplyConfiguration,
		ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: expr},
	}
}

func jsonPatch(expr string) admissionregistrationv1.Mutation {
	return admissionregistrationv1.Mutation{
		PatchType: admissionregistrationv1.PatchTypeJSONPatch,
		JSONPatch: &admissionregistrationv1.JSONPatch{Expression: expr},
	}
}

// createPolicy creates a policy and its binding, both removed at the
// end of the test.
func createPolicy(t *testing.T, cs kubernetes.Interface, p *admissionregistrationv1.MutatingAdmissionPolicy, b *admissionregistrationv1.MutatingAdmissionPolicyBinding) {
	t.Helper()
	ctx := context.Background()
	regs := cs.AdmissionregistrationV1()
	if _, err := regs.MutatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create policy %s: %v", p.Name, err)
	}
	t.Cleanup(func() { _ = regs.MutatingAdmissionPolicies().Delete(ctx, p.Name, metav1.DeleteOptions{}) })
	if _, err := regs.MutatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create binding %s: %v", b.Name, err)
	}
	t.Cleanup(func() { _ = regs.MutatingAdmissionPolicyBindings().Delete(ctx, b.Name, metav1.DeleteOptions{}) })
}

// createUntil creates deployments (deleting each) until done accepts one
// created, as the e2e test waits for a policy to be in force; it returns
// the last one. An error ends the wait when fatal says so.
func createUntil(t *testing.T, cs kubernetes.Interface, ns string, done func(*appsv1.Deployment, error) bool) (*appsv1.Deployment, error) {
	t.Helper()
	ctx := context.Background()
	deployments := cs.AppsV1().Deployments(ns)
	var (
		last    *appsv1.Deployment
		lastErr error
		i       int
	)
	framework.Eventually(t, 20*time.Second, func() bool {
		i++
		last, lastErr = deployments.Create(ctx, mapDeployment(fmt.Sprintf("marker-%d", i)), metav1.CreateOptions{})
		if lastErr == nil {
			_ = deployments.Delete(ctx, last.Name, metav1.DeleteOptions{})
		}
		return done(last, lastErr)
	})
	return last, lastErr
}

// TestMutatingAdmissionPolicyAPI drives both resources as the
// conformance tests do: discovery, create from a generateName, get,
// list, watch, merge patch, update, delete and deletecollection.
func TestMutatingAdmissionPolicyAPI(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	cs := c.Client

	resources, err := cs.Discovery().ServerResourcesForGroupVersion(admissionregistrationv1.SchemeGroupVersion.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mutatingadmissionpolicies", "mutatingadmissionpolicybindings"} {
		if !slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == name }) {
			t.Errorf("discovery of admissionregistration.k8s.io/v1 lacks %s", name)
		}
	}

	t.Run("policies", func(t *testing.T) {
		client := cs.AdmissionregistrationV1().MutatingAdmissionPolicies()
		label := map[string]string{"e2e-map": "x"}
		tmpl := mapPolicy("", "", applyConfiguration(`Object{spec: Object.spec{replicas: 100}}`))
		tmpl.GenerateName, tmpl.Labels = "e2e-example-map-", label
		tmpl.Spec.MatchConstraints.NamespaceSelector = nil
		tmpl.Spec.MatchConstraints.ResourceRules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
		crudCheck(t, crud[*admissionregistrationv1.MutatingAdmissionPolicy]{
			create: func() (*admissionregistrationv1.MutatingAdmissionPolicy, error) {
				return client.Create(ctx, tmpl, metav1.CreateOptions{})
			},
			get: func(name string) (*admissionregistrationv1.MutatingAdmissionPolicy, error) {
				return client.Get(ctx, name, metav1.GetOptions{})
			},
			list: func() (int, string, error) {
				l, err := client.List(ctx, metav1.ListOptions{LabelSelector: "e2e-map=x"})
				if err != nil {
					return 0, "", err
				}
				return len(l.Items), l.ResourceVersion, nil
			},
			watch: func(rv string) (watch.Interface, error) {
				return client.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, LabelSelector: "e2e-map=x"})
			},
			patch: func(name string) (*admissionregistrationv1.MutatingAdmissionPolicy, error) {
				return client.Patch(ctx, name, types.MergePatchType,
					[]byte(`{"metadata":{"annotations":{"patched":"true"}},"spec":{"reinvocationPolicy":"IfNeeded"}}`), metav1.PatchOptions{})
			},
			patched: func(p *admissionregistrationv1.MutatingAdmissionPolicy) bool {
				return p.Annotations["patched"] == "true" && p.Spec.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy
			},
			update: func(p *admissionregistrationv1.MutatingAdmissionPolicy) (*admissionregistrationv1.MutatingAdmissionPolicy, error) {
				p.Annotations["updated"] = "true"
				p.Spec.ReinvocationPolicy = admissionregistrationv1.NeverReinvocationPolicy
				return client.Update(ctx, p, metav1.UpdateOptions{})
			},
			delete: func(name string) error { return client.Delete(ctx, name, metav1.DeleteOptions{}) },
			deleteCollection: func() error {
				return client.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "e2e-map=x"})
			},
		})
		// The defaults: failurePolicy Fail, the match constraints'
		// matchPolicy, selectors and scope.
		p, err := client.Create(ctx, tmpl, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Delete(ctx, p.Name, metav1.DeleteOptions{}) })
		m := p.Spec.MatchConstraints
		if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionregistrationv1.Fail ||
			m.MatchPolicy == nil || *m.MatchPolicy != admissionregistrationv1.Equivalent ||
			m.NamespaceSelector == nil || m.ObjectSelector == nil || m.ResourceRules[0].Scope == nil || p.Generation != 1 {
			t.Errorf("created policy = %+v, want upstream's defaults and generation 1", p)
		}
	})

	t.Run("bindings", func(t *testing.T) {
		client := cs.AdmissionregistrationV1().MutatingAdmissionPolicyBindings()
		tmpl := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-example-mapb-", Labels: map[string]string{"e2e-mapb": "x"}},
			Spec:       admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "replicalimit-policy.example.com"},
		}
		crudCheck(t, crud[*admissionregistrationv1.MutatingAdmissionPolicyBinding]{
			create: func() (*admissionregistrationv1.MutatingAdmissionPolicyBinding, error) {
				return client.Create(ctx, tmpl, metav1.CreateOptions{})
			},
			get: func(name string) (*admissionregistrationv1.MutatingAdmissionPolicyBinding, error) {
				return client.Get(ctx, name, metav1.GetOptions{})
			},
			list: func() (int, string, error) {
				l, err := client.List(ctx, metav1.ListOptions{LabelSelector: "e2e-mapb=x"})
				if err != nil {
					return 0, "", err
				}
				return len(l.Items), l.ResourceVersion, nil
			},
			watch: func(rv string) (watch.Interface, error) {
				return client.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, LabelSelector: "e2e-mapb=x"})
			},
			patch: func(name string) (*admissionregistrationv1.MutatingAdmissionPolicyBinding, error) {
				return client.Patch(ctx, name, types.MergePatchType,
					[]byte(`{"metadata":{"annotations":{"patched":"true"}},"spec":{"policyName":"new-policy.example.com"}}`), metav1.PatchOptions{})
			},
			patched: func(b *admissionregistrationv1.MutatingAdmissionPolicyBinding) bool {
				return b.Annotations["patched"] == "true" && b.Spec.PolicyName == "new-policy.example.com"
			},
			update: func(b *admissionregistrationv1.MutatingAdmissionPolicyBinding) (*admissionregistrationv1.MutatingAdmissionPolicyBinding, error) {
				b.Annotations["updated"] = "true"
				b.Spec.PolicyName = "replicalimit-policy.example.com"
				return client.Update(ctx, b, metav1.UpdateOptions{})
			},
			delete: func(name string) error { return client.Delete(ctx, name, metav1.DeleteOptions{}) },
			deleteCollection: func() error {
				return client.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "e2e-mapb=x"})
			},
		})
	})
}

// crud is one resource's client calls, for crudCheck.
type crud[T metav1.Object] struct {
	create           func() (T, error)
	get              func(name string) (T, error)
	list             func() (n int, rv string, err error)
	watch            func(rv string) (watch.Interface, error)
	patch            func(name string) (T, error)
	patched          func(T) bool
	update           func(T) (T, error)
	delete           func(name string) error
	deleteCollection func() error
}

// crudCheck runs the steps of the conformance tests on c: three
// creates, a get, a watch from the list's resourceVersion that sees the
// patch, an update, a delete leaving two, a deletecollection leaving
// none.
func crudCheck[T metav1.Object](t *testing.T, c crud[T]) {
	t.Helper()
	var created T
	for range 3 {
		var err error
		if created, err = c.create(); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	read, err := c.get(created.GetName())
	if err != nil || read.GetUID() != created.GetUID() || read.GetResourceVersion() == "" {
		t.Fatalf("get = %v, %v; want the created object", read, err)
	}
	n, rv, err := c.list()
	if err != nil || n != 3 {
		t.Fatalf("list = %d items, %v; want 3", n, err)
	}
	w, err := c.watch(rv)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()
	patched, err := c.patch(created.GetName())
	if err != nil || !c.patched(patched) || patched.GetResourceVersion() == read.GetResourceVersion() {
		t.Fatalf("patch = %v, %v; want the patched object with a new resourceVersion", patched, err)
	}
	updated, err := c.update(patched)
	if err != nil || updated.GetAnnotations()["updated"] != "true" {
		t.Fatalf("update = %v, %v", updated, err)
	}
	select {
	case ev := <-w.ResultChan():
		obj, ok := ev.Object.(T)
		if ev.Type != watch.Modified || !ok || obj.GetAnnotations()["patched"] != "true" {
			t.Errorf("first watch event = %s %#v, want the patched object Modified", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event after the patch")
	}
	if err := c.delete(created.GetName()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.get(created.GetName()); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete = %v, want 404", err)
	}
	if n, _, err := c.list(); err != nil || n != 2 {
		t.Errorf("list after delete = %d items, %v; want 2", n, err)
	}
	if err := c.deleteCollection(); err != nil {
		t.Fatalf("deletecollection: %v", err)
	}
	if n, _, err := c.list(); err != nil || n != 0 {
		t.Errorf("list after deletecollection = %d items, %v; want 0", n, err)
	}
}

// TestMutatingAdmissionPolicyInvalid: what upstream's validation refuses
// is a 422 naming the field, in upstream's words.
func TestMutatingAdmissionPolicyInvalid(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	regs := c.Client.AdmissionregistrationV1()
	for _, tc := range []struct {
		name   string
		modify func(*admissionregistrationv1.MutatingAdmissionPolicy)
		want   string
	}{
		{"no mutations", func(p *admissionregistrationv1.MutatingAdmissionPolicy) { p.Spec.Mutations = nil },
			"spec.mutations: Required value: mutations must contain at least one item"},
		{"no reinvocationPolicy", func(p *admissionregistrationv1.MutatingAdmissionPolicy) { p.Spec.ReinvocationPolicy = "" },
			"spec.reinvocationPolicy: Required value"},
		{"DELETE", func(p *admissionregistrationv1.MutatingAdmissionPolicy) {
			p.Spec.MatchConstraints.ResourceRules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}
		}, `spec.matchConstraints.resourceRules.operations: Unsupported value: "DELETE": supported values: "*", "CONNECT", "CREATE", "UPDATE"`},
		{"apply configuration of the wrong type", func(p *admissionregistrationv1.MutatingAdmissionPolicy) {
			p.Spec.Mutations = []admissionregistrationv1.Mutation{applyConfiguration(`"not an object"`)}
		}, "spec.mutations[0].applyConfiguration.expression: Invalid value"},
		{"JSON patch that does not compile", func(p *admissionregistrationv1.MutatingAdmissionPolicy) {
			p.Spec.Mutations = []admissionregistrationv1.Mutation{jsonPatch(`[JSONPatch{op: "add", path: "/x", value: object.nope(}]`)}
		}, "spec.mutations[0].jsonPatch.expression: Invalid value"},
		{"both patch members", func(p *admissionregistrationv1.MutatingAdmissionPolicy) {
			p.Spec.Mutations[0].JSONPatch = &admissionregistrationv1.JSONPatch{Expression: "[]"}
		}, "spec.mutations[0].jsonPatch: Invalid value: \"{jsonPatch}\": must not be specified when patchType is ApplyConfiguration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mapPolicy("invalid", "ns", applyConfiguration(`Object{spec: Object.spec{replicas: 1}}`))
			tc.modify(p)
			_, err := regs.MutatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("create = %v, want 422 with %q", err, tc.want)
			}
		})
	}
	_, err := regs.MutatingAdmissionPolicyBindings().Create(ctx, &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "no-policy"},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.policyName: Required value") {
		t.Errorf("create of a binding without policyName = %v, want 422", err)
	}
}

// TestMutatingAdmissionPolicyMutates runs policies on deployment creates:
// the two conformance cases (apply configurations), a JSON patch, a
// parameter, failurePolicy on an expression that fails, and the
// reinvocation of a policy after a later one changed the object.
func TestMutatingAdmissionPolicyMutates(t *testing.T) {
	c := framework.StartInProcess(t)
	cs := c.Client
	ctx := context.Background()

	t.Run("replicas", func(t *testing.T) {
		mapNamespace(t, cs, "map-replicas")
		createPolicy(t, cs, mapPolicy("replicas", "map-replicas", applyConfiguration(`Object{spec: Object.spec{replicas: 1337}}`)),
			mapBinding("replicas", "map-replicas", "replicas"))
		d, err := createUntil(t, cs, "map-replicas", func(d *appsv1.Deployment, err error) bool {
			return err != nil || *d.Spec.Replicas == 1337
		})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if d.Spec.Template.Spec.Containers[0].Image != "nginx:latest" {
			t.Errorf("the rest of the deployment changed: %+v", d.Spec)
		}
	})

	t.Run("annotations", func(t *testing.T) {
		mapNamespace(t, cs, "map-annotations")
		createPolicy(t, cs, mapPolicy("annotations", "map-annotations", applyConfiguration(`
			Object{
				metadata: Object.metadata{
					annotations: {"mutated-by": "admission-policy"}
				}
			}`)), mapBinding("annotations", "map-annotations", "annotations"))
		if _, err := createUntil(t, cs, "map-annotations", func(d *appsv1.Deployment, err error) bool {
			return err != nil || d.Annotations["mutated-by"] == "admission-policy"
		}); err != nil {
			t.Fatalf("create: %v", err)
		}
	})

	t.Run("json patch", func(t *testing.T) {
		mapNamespace(t, cs, "map-jsonpatch")
		createPolicy(t, cs, mapPolicy("jsonpatch", "map-jsonpatch", jsonPatch(`[
			JSONPatch{op: "add", path: "/metadata/labels/" + jsonpatch.escapeKey("example.com/patched"), value: "yes"},
			JSONPatch{op: "replace", path: "/spec/replicas", value: object.spec.replicas + 2}
		]`)), mapBinding("jsonpatch", "map-jsonpatch", "jsonpatch"))
		d, err := createUntil(t, cs, "map-jsonpatch", func(d *appsv1.Deployment, err error) bool {
			return err != nil || d.Labels["example.com/patched"] == "yes"
		})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if *d.Spec.Replicas != 3 {
			t.Errorf("replicas = %d, want 3", *d.Spec.Replicas)
		}
	})

	t.Run("params", func(t *testing.T) {
		mapNamespace(t, cs, "map-params")
		if _, err := cs.CoreV1().ConfigMaps("map-params").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "owner"}, Data: map[string]string{"team": "blue"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := mapPolicy("params", "map-params", applyConfiguration(
			`Object{metadata: Object.metadata{labels: {"team": params.data.team}}}`))
		p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
		b := mapBinding("params", "map-params", "params")
		b.Spec.ParamRef = &admissionregistrationv1.ParamRef{Name: "owner", Namespace: "map-params",
			ParameterNotFoundAction: ptr.To(admissionregistrationv1.DenyAction)}
		createPolicy(t, cs, p, b)
		if _, err := createUntil(t, cs, "map-params", func(d *appsv1.Deployment, err error) bool {
			return err != nil || d.Labels["team"] == "blue"
		}); err != nil {
			t.Fatalf("create: %v", err)
		}
	})

	// A mutation whose expression fails at run time: with failurePolicy
	// Fail the create is refused, with Ignore it is admitted unchanged.
	t.Run("failurePolicy", func(t *testing.T) {
		mapNamespace(t, cs, "map-fail")
		failing := applyConfiguration(`Object{metadata: Object.metadata{annotations: {"x": string(1 / (size(object.metadata.name) - size(object.metadata.name)))}}}`)
		fail := mapPolicy("fail", "map-fail", failing)
		createPolicy(t, cs, fail, mapBinding("fail", "map-fail", "fail"))
		_, err := createUntil(t, cs, "map-fail", func(_ *appsv1.Deployment, err error) bool { return err != nil })
		if want := "policy 'fail' with binding 'fail' denied request: "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "division by zero") {
			t.Errorf("create under failurePolicy Fail = %v, want %q and the expression's error", err, want)
		}

		mapNamespace(t, cs, "map-ignore")
		ignore := mapPolicy("ignore", "map-ignore", failing,
			applyConfiguration(`Object{metadata: Object.metadata{annotations: {"second": "ran"}}}`))
		ignore.Spec.FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
		createPolicy(t, cs, ignore, mapBinding("ignore", "map-ignore", "ignore"))
		// The second mutation shows the policy in force; the first one's
		// failure is ignored.
		d, err := createUntil(t, cs, "map-ignore", func(d *appsv1.Deployment, err error) bool {
			return err != nil || d.Annotations["second"] == "ran"
		})
		if err != nil {
			t.Fatalf("create under failurePolicy Ignore: %v", err)
		}
		if _, ok := d.Annotations["x"]; ok {
			t.Errorf("annotations = %v, want no x", d.Annotations)
		}
	})

	// "a-copy" copies a label that "b-set" sets into an annotation. The
	// policies run in one order or the other; with reinvocationPolicy
	// IfNeeded, a-copy sees the label either way.
	t.Run("reinvocation", func(t *testing.T) {
		mapNamespace(t, cs, "map-reinvoke")
		cp := mapPolicy("a-copy", "map-reinvoke", applyConfiguration(`
			has(object.metadata.labels) && "tier" in object.metadata.labels ?
			Object{metadata: Object.metadata{annotations: {"copied-tier": object.metadata.labels["tier"]}}} :
			Object{}`))
		cp.Spec.ReinvocationPolicy = admissionregistrationv1.IfNeededReinvocationPolicy
		createPolicy(t, cs, cp, mapBinding("a-copy", "map-reinvoke", "a-copy"))
		createPolicy(t, cs, mapPolicy("b-set", "map-reinvoke", applyConfiguration(`Object{metadata: Object.metadata{labels: {"tier": "gold"}}}`)),
			mapBinding("b-set", "map-reinvoke", "b-set"))
		if _, err := createUntil(t, cs, "map-reinvoke", func(d *appsv1.Deployment, err error) bool {
			return err != nil || (d.Labels["tier"] == "gold" && d.Annotations["copied-tier"] == "gold")
		}); err != nil {
			t.Fatalf("create: %v", err)
		}
	})
}

// TestMutatingAdmissionPolicyCustomResource: an apply configuration on a
// custom resource merges by the CRD's schema, which the policies read
// from /openapi/v3 (the built-in kinds use the server's own types).
func TestMutatingAdmissionPolicyCustomResource(t *testing.T) {
	c := framework.StartInProcess(t)
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(c.Config)
	props := map[string]apiextensionsv1.JSONSchemaProps{"color": {Type: "string"}, "size": {Type: "integer"}}
	_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": {Type: "object", Properties: props}},
				}},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mapNamespace(t, c.Client, "map-crd")
	p := mapPolicy("gadgets", "map-crd", applyConfiguration(`Object{spec: Object.spec{color: "red"}}`))
	p.Spec.MatchConstraints.ResourceRules[0].Rule = admissionregistrationv1.Rule{APIGroups: []string{"example.com"}, APIVersions: []string{"v1"}, Resources: []string{"gadgets"}}
	createPolicy(t, c.Client, p, mapBinding("gadgets", "map-crd", "gadgets"))

	gadgets := dynamic.NewForConfigOrDie(c.Config).Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gadgets"}).Namespace("map-crd")
	i := 0
	var last *unstructured.Unstructured
	framework.Eventually(t, 20*time.Second, func() bool {
		i++
		g := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.com/v1", "kind": "Gadget",
			"metadata": map[string]any{"name": fmt.Sprintf("g-%d", i)},
			"spec":     map[string]any{"size": int64(2)},
		}}
		// Until the CRD is served, and while the policies read its
		// schema, creates fail (404, then upstream's 503).
		created, err := gadgets.Create(ctx, g, metav1.CreateOptions{})
		if err != nil {
			return false
		}
		last = created
		color, _, _ := unstructured.NestedString(created.Object, "spec", "color")
		return color == "red"
	})
	if size, _, _ := unstructured.NestedInt64(last.Object, "spec", "size"); size != 2 {
		t.Errorf("spec.size = %d, want 2 kept", size)
	}
}
