package apiserver

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor/direct"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/registry"
)

// The objects patches and applies are fuzzed against: stored objects as
// a PATCH finds them, with the lists strategic merge and apply key by
// name, port or key.
func patchTargets(t testing.TB) []patchTarget {
	t.Helper()
	labels := map[string]string{"app": "web", "tier": "front"}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: labels, Annotations: map[string]string{"a": "b"}, Finalizers: []string{"f"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "c", Image: "i", Args: []string{"a", "b"},
				Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
				Env:   []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}},
			}, {Name: "d", Image: "j"}},
			Volumes:     []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Tolerations: []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}},
		},
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default", Labels: labels},
		Data:       map[string]string{"a": "1", "b": strings.Repeat("x", 100)},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: labels, Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.0.0.10",
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}},
	}
	replicas := int32(2)
	deploy := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default", Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod.Spec}},
	}
	byKind := map[string]*registry.Resource{}
	for _, res := range allResources() {
		byKind[res.GroupVersionKind().String()] = res
	}
	var out []patchTarget
	for _, obj := range []runtime.Object{cm, pod, svc, deploy} {
		gvk := obj.GetObjectKind().GroupVersionKind()
		res := byKind[gvk.String()]
		if res == nil {
			t.Fatalf("no resource serves %s", gvk)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, patchTarget{res: res, gvk: gvk, obj: obj, json: b})
	}
	return out
}

type patchTarget struct {
	res  *registry.Resource
	gvk  schema.GroupVersionKind
	obj  runtime.Object
	json []byte
}

var patchTypes = []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.StrategicMergePatchType)}

// maxGrowth bounds how much larger than its inputs a patch's result, or
// an apply body's decoding, may be when re-encoded as JSON: re-encoding
// may escape every byte of a string as \u00XX, and field sets and
// defaults add their share. A JSON patch may add maxJSONPatchCopyBytes
// more through copies. Anything far beyond — a document doubling with
// every copy, aliases expanding — is what the bounds are for.
const (
	maxGrowth      = 16
	maxGrowthSlack = 64 << 10
)

// FuzzPatch applies arbitrary JSON patches, merge patches and strategic
// merge patches to stored objects as a PATCH does, and decodes the
// result as the object's kind. Nothing may panic, and the result stays
// within maxGrowth of the object and the patch (plus the copy allowance).
func FuzzPatch(f *testing.F) {
	targets := patchTargets(f)
	for i := range targets {
		for typ, p := range [][]string{
			{ // JSON patch
				`[{"op":"add","path":"/metadata/labels/x","value":"y"}]`,
				`[{"op":"replace","path":"/metadata/name","value":"q"},{"op":"remove","path":"/metadata/labels/app"}]`,
				`[{"op":"test","path":"/metadata/namespace","value":"default"},{"op":"move","from":"/metadata/labels","path":"/metadata/annotations"}]`,
				`[{"op":"add","path":"/metadata/annotations","value":{"a0":"` + strings.Repeat("a", 1000) + `"}}` +
					strings.Repeat(`,{"op":"copy","from":"/metadata/annotations","path":"/metadata/annotations/x"}`, 17) + `]`,
				`[{"op":"add","path":"/spec/containers/-","value":{"name":"e","image":"k"}},{"op":"copy","from":"/spec/containers/0","path":"/spec/containers/1"}]`,
			},
			{ // merge patch
				`{"metadata":{"labels":{"x":"y","app":null}}}`,
				`{"spec":{"containers":[{"name":"z","image":"z"}]},"data":{"a":null}}`,
				`{"metadata":` + strings.Repeat(`{"a":`, 50) + `1` + strings.Repeat(`}`, 50) + `}`,
			},
			{ // strategic merge patch
				`{"spec":{"containers":[{"name":"c","image":"new"}]}}`,
				`{"spec":{"containers":[{"name":"c","$patch":"delete"}],"$setElementOrder/containers":[{"name":"d"}]}}`,
				`{"spec":{"ports":[{"port":8080,"name":"alt"}],"$retainKeys":["ports"]},"metadata":{"$patch":"replace","name":"s"}}`,
				`{"spec":{"template":{"spec":{"containers":[{"name":"c","env":[{"name":"A","$patch":"delete"},{"name":"C","value":"3"}]}]}}}}`,
				`{"metadata":{"finalizers":["g"],"$deleteFromPrimitiveList/finalizers":["f"]}}`,
			},
		} {
			for _, body := range p {
				f.Add(uint8(typ), uint8(i), []byte(body))
			}
		}
	}
	f.Fuzz(func(t *testing.T, typ, target uint8, patch []byte) {
		pt := patchTypes[int(typ)%len(patchTypes)]
		tg := targets[int(target)%len(targets)]
		apply, err := patcher(pt, patch, tg.res.New())
		if err != nil {
			return
		}
		out, err := apply(tg.json)
		if err != nil {
			return
		}
		limit := maxGrowth*(len(tg.json)+len(patch)) + maxGrowthSlack
		if pt == string(types.JSONPatchType) {
			limit += maxJSONPatchCopyBytes
		}
		if len(out) > limit {
			t.Fatalf("%s of %d bytes made a %s of %d bytes %d bytes long (limit %d)", pt, len(patch), tg.gvk.Kind, len(tg.json), len(out), limit)
		}
		for _, directive := range []string{metav1.FieldValidationStrict, metav1.FieldValidationIgnore} {
			if obj, _, err := decodeWith("application/json", directive, out, tg.gvk, tg.res.New(), nil); err == nil {
				exerciseStrategy(tg.res, obj)
			}
		}
	})
}

// FuzzApply decodes arbitrary server-side apply bodies, YAML and CBOR,
// and applies them to stored objects with the resource's FieldManager as
// an apply PATCH does. Nothing may panic; the decoded configuration and
// the applied object stay within maxGrowth of their inputs.
func FuzzApply(f *testing.F) {
	s := storagelessServer(f)
	targets := patchTargets(f)
	for i, tg := range targets {
		f.Add(false, uint8(i), false, tg.json) // JSON is YAML
		y := "apiVersion: " + tg.gvk.GroupVersion().String() + "\nkind: " + tg.gvk.Kind + "\nmetadata:\n  name: x\n  labels: {a: b}\n"
		f.Add(false, uint8(i), true, []byte(y))
		var m map[string]any
		if err := json.Unmarshal(tg.json, &m); err != nil {
			f.Fatal(err)
		}
		cb, err := direct.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(true, uint8(i), false, cb)
	}
	f.Add(false, uint8(0), false, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: &d {a: '1'}\nbinaryData: *d\n"))
	f.Add(false, uint8(1), true, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: new, ports: [{containerPort: 80}]}\n  - {name: e, image: e}\n"))
	f.Add(false, uint8(2), false, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, protocol: UDP}, {port: 80, protocol: UDP}]}\n"))
	f.Fuzz(func(t *testing.T, cbor bool, target uint8, force bool, body []byte) {
		ct := string(types.ApplyYAMLPatchType)
		if cbor {
			ct = string(types.ApplyCBORPatchType)
		}
		tg := targets[int(target)%len(targets)]
		patchObj, err := decodeApplyPatch(ct, body)
		if err != nil {
			return
		}
		decoded, err := json.Marshal(patchObj.Object)
		if err == nil && len(decoded) > maxGrowth*len(body)+maxGrowthSlack {
			t.Fatalf("an apply body of %d bytes decoded to %d bytes of JSON", len(body), len(decoded))
		}
		_, _ = strictApplyCheck(ct, metav1.FieldValidationStrict, body)
		sv := s.resources[tg.res.GroupVersionResource()]
		fm, err := s.fieldManager(sv, "")
		if err != nil || fm == nil {
			t.Fatalf("field manager of %s: %v", tg.gvk, err)
		}
		live := tg.obj.DeepCopyObject()
		out, err := fm.Apply(live, patchObj.DeepCopy(), "fuzz", force)
		if err != nil {
			_ = applyError(err)
			return
		}
		applied, err := json.Marshal(out)
		if err != nil {
			return
		}
		if limit := maxGrowth*(len(tg.json)+len(body)) + maxGrowthSlack; len(applied) > limit {
			t.Fatalf("an apply body of %d bytes made a %s of %d bytes %d bytes long (limit %d)", len(body), tg.gvk.Kind, len(tg.json), len(applied), limit)
		}
		exerciseStrategy(tg.res, out)
	})
}
