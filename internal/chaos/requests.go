package chaos

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
)

// The requests the workload sends. Each is sent once (MaxRetries(0)):
// client-go retries a write answered with Retry-After, and a retry of a
// write that took effect would be answered 409, which the checks would
// take for a lost write. A request gets requestTimeout at most; a
// timeout is an indeterminate answer.

const requestTimeout = 30 * time.Second

// valueKey is the ConfigMap data key that holds a write's value.
const valueKey = "v"

// observed is the state of one key as an answer showed it.
type observed struct {
	exists bool
	value  string
	rv     int64
}

func (o observed) String() string {
	if !o.exists {
		return "absent"
	}
	return fmt.Sprintf("%q at rv %d", o.value, o.rv)
}

func observe(cm *corev1.ConfigMap) (observed, error) {
	rv, err := strconv.ParseInt(cm.ResourceVersion, 10, 64)
	if err != nil {
		return observed{}, fmt.Errorf("configmap %s: resourceVersion %q: %w", cm.Name, cm.ResourceVersion, err)
	}
	return observed{exists: true, value: cm.Data[valueKey], rv: rv}, nil
}

func configMap(name, value string, rv int64) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Data:       map[string]string{valueKey: value},
	}
	if rv != 0 {
		cm.ResourceVersion = strconv.FormatInt(rv, 10)
	}
	return cm
}

// createObj creates name holding value and returns what was stored.
func createObj(ctx context.Context, c rest.Interface, ns, name, value string) (observed, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	out := &corev1.ConfigMap{}
	err := c.Post().Namespace(ns).Resource("configmaps").MaxRetries(0).Body(configMap(name, value, 0)).Do(ctx).Into(out)
	if err != nil {
		return observed{}, err
	}
	return observe(out)
}

// updateObj replaces name with value if it is still at rv.
func updateObj(ctx context.Context, c rest.Interface, ns, name, value string, rv int64) (observed, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	out := &corev1.ConfigMap{}
	err := c.Put().Namespace(ns).Resource("configmaps").Name(name).MaxRetries(0).Body(configMap(name, value, rv)).Do(ctx).Into(out)
	if err != nil {
		return observed{}, err
	}
	return observe(out)
}

// deleteObj deletes name if it is still at rv.
func deleteObj(ctx context.Context, c rest.Interface, ns, name string, rv int64) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s := strconv.FormatInt(rv, 10)
	opts := &metav1.DeleteOptions{
		TypeMeta:      metav1.TypeMeta{APIVersion: "v1", Kind: "DeleteOptions"},
		Preconditions: &metav1.Preconditions{ResourceVersion: &s},
	}
	return c.Delete().Namespace(ns).Resource("configmaps").Name(name).MaxRetries(0).Body(opts).Do(ctx).Error()
}

// getObj reads name from etcd (a consistent read: no resourceVersion).
// A missing object is observed absent, not an error.
func getObj(ctx context.Context, c rest.Interface, ns, name string) (observed, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	out := &corev1.ConfigMap{}
	err := c.Get().Namespace(ns).Resource("configmaps").Name(name).MaxRetries(0).Do(ctx).Into(out)
	if apierrors.IsNotFound(err) {
		return observed{}, nil
	}
	if err != nil {
		return observed{}, err
	}
	return observe(out)
}

// getAnswered reads name until a server answers it, as after a kill,
// for at most a minute.
func getAnswered(ctx context.Context, c rest.Interface, ns, name string) (observed, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		o, err := getObj(ctx, c, ns, name)
		if err == nil {
			return o, nil
		}
		// Retry while no server answers (down, starting, shedding load);
		// any other refusal is final.
		if classify(err) == refused && !utilnet.IsConnectionRefused(err) && !apierrors.IsTooManyRequests(err) {
			return observed{}, fmt.Errorf("get %s/%s: %w", ns, name, err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return observed{}, fmt.Errorf("get %s/%s: no answer within a minute: %w", ns, name, err)
		}
		pause(ctx, 20*time.Millisecond)
	}
}

// pause waits d or until ctx ends. It paces retries against a server
// that is down; nothing waits on it for readiness.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
