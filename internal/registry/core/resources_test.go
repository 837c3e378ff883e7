package core

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/kubernetes/scheme"
)

func TestResourcesDiscovery(t *testing.T) {
	type entry struct {
		Singular, Kind string
		Short, Cats    []string
		Namespaced     bool
		Status         bool
	}
	want := map[string]entry{
		"services":               {"service", "Service", []string{"svc"}, []string{"all"}, true, true},
		"endpoints":              {"endpoints", "Endpoints", []string{"ep"}, nil, true, false},
		"configmaps":             {"configmap", "ConfigMap", []string{"cm"}, nil, true, false},
		"secrets":                {"secret", "Secret", nil, nil, true, false},
		"serviceaccounts":        {"serviceaccount", "ServiceAccount", []string{"sa"}, nil, true, false},
		"events":                 {"event", "Event", []string{"ev"}, nil, true, false},
		"limitranges":            {"limitrange", "LimitRange", []string{"limits"}, nil, true, false},
		"resourcequotas":         {"resourcequota", "ResourceQuota", []string{"quota"}, nil, true, true},
		"persistentvolumes":      {"persistentvolume", "PersistentVolume", []string{"pv"}, nil, false, true},
		"persistentvolumeclaims": {"persistentvolumeclaim", "PersistentVolumeClaim", []string{"pvc"}, nil, true, true},
		"podtemplates":           {"podtemplate", "PodTemplate", nil, nil, true, false},
		"replicationcontrollers": {"replicationcontroller", "ReplicationController", []string{"rc"}, []string{"all"}, true, true},
	}
	seen := map[string]bool{}
	for _, r := range Resources() {
		if r == nil {
			t.Fatal("Resources() holds a nil descriptor")
		}
		if seen[r.Name] {
			t.Errorf("%s listed twice", r.Name)
		}
		seen[r.Name] = true
		if r.GroupVersion.String() != "v1" {
			t.Errorf("%s: group version %s", r.Name, r.GroupVersion)
		}
		w, ok := want[r.Name]
		if !ok {
			continue
		}
		got := entry{r.Singular, r.Kind, r.ShortNames, r.Categories, r.Namespaced, r.Status}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", r.Name, diff)
		}
	}
	for _, name := range []string{"pods", "nodes", "namespaces"} {
		if !seen[name] {
			t.Errorf("Resources() lacks %s", name)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("Resources() lacks %s", name)
		}
	}
}

// TestResourcesWellFormed checks, on empty objects, what the server relies
// on: New and NewList match the kind, Fields and Row do not panic, Fields
// has the metadata keys, and Row has one cell per column.
func TestResourcesWellFormed(t *testing.T) {
	for _, r := range Resources() {
		if r == nil || r.New == nil {
			continue
		}
		t.Run(r.Name, func(t *testing.T) {
			obj := r.New()
			gvks, _, err := scheme.Scheme.ObjectKinds(obj)
			if err != nil || len(gvks) == 0 || gvks[0].Kind != r.Kind {
				t.Errorf("New() kinds %v, %v; want %s", gvks, err, r.Kind)
			}
			list := r.NewList()
			if !meta.IsListType(list) {
				t.Errorf("NewList() %T is not a list", list)
			}
			if lk, _, err := scheme.Scheme.ObjectKinds(list); err != nil || lk[0].Kind != r.Kind+"List" {
				t.Errorf("NewList() kinds %v, %v", lk, err)
			}
			if r.Fields != nil {
				fs := r.Fields(obj)
				if _, ok := fs["metadata.name"]; !ok {
					t.Errorf("fields lack metadata.name: %v", fs)
				}
				if _, ok := fs["metadata.namespace"]; ok != r.Namespaced {
					t.Errorf("metadata.namespace present = %v, namespaced = %v", ok, r.Namespaced)
				}
			}
			if r.Table != nil {
				if cells := r.Table.Row(obj); len(cells) != len(r.Table.Columns) {
					t.Errorf("%d cells for %d columns", len(cells), len(r.Table.Columns))
				}
			}
			if s := r.Strategy; s.Default != nil {
				s.Default(obj)
			}
			if s := r.Strategy; s.Validate != nil {
				_ = s.Validate(obj) // must not panic on an empty object
			}
		})
	}
}
