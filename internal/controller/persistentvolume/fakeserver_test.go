package persistentvolume_test

import (
	"errors"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// newFakeServer returns a fake clientset holding objs whose writes keep the
// two API server rules the binder relies on, which the plain fake does not:
// optimistic concurrency (every write sets a new resourceVersion; an update
// carrying another one fails with 409) and the status subresource (an
// update writes spec and metadata, UpdateStatus writes status, each
// keeping the other part as stored). Without them a stale write would
// silently win and the tests would test the fake.
func newFakeServer(objs ...runtime.Object) *fake.Clientset {
	var (
		mu sync.Mutex
		rv int64
	)
	next := func() string {
		rv++
		return strconv.FormatInt(rv, 10)
	}
	for _, o := range objs {
		if m, err := meta.Accessor(o); err == nil {
			m.SetResourceVersion(next())
		}
	}
	client := fake.NewClientset(objs...)
	tracker := client.Tracker()
	client.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateAction)
		if ca.GetSubresource() != "" {
			return false, nil, nil
		}
		obj := ca.GetObject().DeepCopyObject()
		m, err := meta.Accessor(obj)
		if err != nil {
			return false, nil, nil
		}
		mu.Lock()
		defer mu.Unlock()
		m.SetResourceVersion(next())
		if err := tracker.Create(ca.GetResource(), obj, ca.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, obj, nil
	})
	client.PrependReactor("update", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ua := a.(k8stesting.UpdateAction)
		obj := ua.GetObject().DeepCopyObject()
		m, err := meta.Accessor(obj)
		if err != nil {
			return false, nil, nil
		}
		mu.Lock()
		defer mu.Unlock()
		stored, err := tracker.Get(ua.GetResource(), ua.GetNamespace(), m.GetName())
		if err != nil {
			return true, nil, err
		}
		sm, _ := meta.Accessor(stored)
		if m.GetResourceVersion() != "" && m.GetResourceVersion() != sm.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(ua.GetResource().GroupResource(), m.GetName(),
				errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		obj = splitStatus(obj, stored, ua.GetSubresource() == "status")
		m, _ = meta.Accessor(obj)
		m.SetResourceVersion(next())
		if err := tracker.Update(ua.GetResource(), obj, ua.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, obj, nil
	})
	return client
}

// splitStatus returns what an update of obj over stored stores: obj with
// stored's status, or (status) stored with obj's status.
func splitStatus(obj, stored runtime.Object, status bool) runtime.Object {
	switch o := obj.(type) {
	case *corev1.PersistentVolume:
		s := stored.(*corev1.PersistentVolume).DeepCopy()
		if status {
			s.Status = o.Status
			return s
		}
		o.Status = s.Status
	case *corev1.PersistentVolumeClaim:
		s := stored.(*corev1.PersistentVolumeClaim).DeepCopy()
		if status {
			s.Status = o.Status
			return s
		}
		o.Status = s.Status
	}
	return obj
}
