// Package envvars computes a container's environment the way upstream's
// kubelet does: envFrom sources first, then env in order (values with
// $(VAR) references expanded over what came before, or taken from
// configMaps, secrets, pod fields and container resources), then the
// Docker-link style variables of Services.
//
// The kubelet passes the result to CRI, and uses Expand for the container's
// command and args; volume.Manager.Mounts takes the same environment for
// subPathExpr.
package envvars

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-io/skiff/internal/kubelet/envvars/expansion"
	"github.com/skiff-io/skiff/internal/kubelet/volume"
)

// Sources is where configMaps and secrets come from; the same interface the
// volume manager reads volume content from.
type Sources = volume.ContentSources

// Inputs are the facts about the node and the pod's sandbox that a
// container's environment may refer to.
type Inputs struct {
	// PodIPs are the sandbox's IPs, primary first (status.podIP(s)). When
	// empty, pod.Status.PodIPs is used.
	PodIPs []string
	// HostIPs are the node's IPs, primary first (status.hostIP(s)). When
	// empty, pod.Status.HostIPs is used; with neither, a reference to them
	// fails.
	HostIPs []string
	// NodeName is spec.nodeName when the pod does not carry it.
	NodeName string
	// NodeAllocatable supplies the limits a container leaves unset for
	// resourceFieldRef (cpu, memory, ephemeral-storage).
	NodeAllocatable v1.ResourceList
	// Services are the cluster's Services (any namespace; Resolve picks the
	// ones the pod should see: default/kubernetes always, its own
	// namespace's when spec.enableServiceLinks is not false). nil gives no
	// service variables.
	Services []*v1.Service
}

// Resolve returns c's environment. Errors use upstream's words, which the
// kubelet reports as CreateContainerConfigError:
//
//	configmap "x" not found
//	secret "x" not found
//	couldn't find key k in ConfigMap ns/x
//	couldn't find key k in Secret ns/x
//
// Optional sources and keys that are missing are skipped. envFrom keys
// that cannot be environment variable names (empty, '=' or non-printable
// characters, after the prefix) are skipped and logged. The result lists
// each name once, in the order it was first defined (envFrom keys sorted
// within their source), then service variables sorted by name.
func Resolve(ctx context.Context, src Sources, pod *v1.Pod, c *v1.Container, in Inputs) ([]*runtimeapi.KeyValue, error) {
	var (
		order      []string
		vals       = map[string]string{}
		configMaps = map[string]*v1.ConfigMap{}
		secrets    = map[string]*v1.Secret{}
	)
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	getConfigMap := func(name string) (*v1.ConfigMap, error) {
		if cm, ok := configMaps[name]; ok {
			return cm, nil
		}
		cm, err := volume.GetConfigMap(ctx, src, pod.Namespace, name)
		if err != nil {
			return nil, err
		}
		configMaps[name] = cm
		return cm, nil
	}
	getSecret := func(name string) (*v1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := volume.GetSecret(ctx, src, pod.Namespace, name)
		if err != nil {
			return nil, err
		}
		secrets[name] = s
		return s, nil
	}

	var invalid []string
	for _, ef := range c.EnvFrom {
		data := map[string]string{}
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := getConfigMap(ef.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(ef.ConfigMapRef.Optional) {
					continue
				}
				return nil, err
			}
			for k, v := range cm.Data {
				data[k] = v
			}
		case ef.SecretRef != nil:
			s, err := getSecret(ef.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(ef.SecretRef.Optional) {
					continue
				}
				return nil, err
			}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		default:
			continue
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := ef.Prefix + k
			if errs := validation.IsRelaxedEnvVarName(name); len(errs) != 0 {
				invalid = append(invalid, name)
				continue
			}
			set(name, data[k])
		}
	}
	if len(invalid) > 0 {
		slog.Default().WarnContext(ctx, "skipped invalid environment variable names from envFrom",
			"pod", pod.Namespace+"/"+pod.Name, "container", c.Name, "names", invalid)
	}

	svcEnv := serviceEnv(pod, in.Services)
	mapping := expansion.MappingFor(vals, svcEnv)
	for _, e := range c.Env {
		val := e.Value
		switch {
		case val != "":
			val = expansion.Expand(val, mapping)
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil:
			v, err := fieldValue(pod, e.ValueFrom.FieldRef, in)
			if err != nil {
				return nil, err
			}
			val = v
		case e.ValueFrom.ResourceFieldRef != nil:
			v, err := volume.ContainerResourceValue(e.ValueFrom.ResourceFieldRef, pod, c, in.NodeAllocatable)
			if err != nil {
				return nil, err
			}
			val = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, err := getConfigMap(ref.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(ref.Optional) {
					continue
				}
				return nil, err
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, pod.Namespace, ref.Name)
			}
			val = v
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, err := getSecret(ref.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(ref.Optional) {
					continue
				}
				return nil, err
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, pod.Namespace, ref.Name)
			}
			val = string(v)
		case e.ValueFrom.FileKeyRef != nil:
			return nil, fmt.Errorf("env %q: fileKeyRef is not supported by skiff", e.Name)
		}
		set(e.Name, val)
	}

	out := make([]*runtimeapi.KeyValue, 0, len(order)+len(svcEnv))
	for _, k := range order {
		out = append(out, &runtimeapi.KeyValue{Key: k, Value: []byte(vals[k])})
	}
	svcKeys := make([]string, 0, len(svcEnv))
	for k := range svcEnv {
		if _, dup := vals[k]; !dup {
			svcKeys = append(svcKeys, k)
		}
	}
	sort.Strings(svcKeys)
	for _, k := range svcKeys {
		out = append(out, &runtimeapi.KeyValue{Key: k, Value: []byte(svcEnv[k])})
	}
	return out, nil
}

// Expand expands $(VAR) references in s (a command or args element) over
// env; undefined references stay as written and $$ is a literal $.
func Expand(s string, env map[string]string) string {
	return expansion.Expand(s, expansion.MappingFor(env))
}

// Map turns Resolve's result into a map, for Expand and for
// volume.Manager.Mounts.
func Map(kvs []*runtimeapi.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = string(kv.Value)
	}
	return m
}

func isTrue(b *bool) bool { return b != nil && *b }

// downwardFields are the fieldRef paths the API accepts for env.
var downwardFields = map[string]bool{
	"metadata.annotations": true, "metadata.labels": true, "metadata.name": true,
	"metadata.namespace": true, "metadata.uid": true, "spec.nodeName": true,
	"spec.restartPolicy": true, "spec.serviceAccountName": true, "spec.schedulerName": true,
	"status.phase": true, "status.hostIP": true, "status.hostIPs": true,
	"status.podIP": true, "status.podIPs": true,
}

// fieldValue resolves an env fieldRef.
func fieldValue(pod *v1.Pod, fs *v1.ObjectFieldSelector, in Inputs) (string, error) {
	if fs.APIVersion != "" && fs.APIVersion != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", fs.APIVersion)
	}
	path := fs.FieldPath
	if path == "spec.host" { // old v1 clients' name for spec.nodeName
		path = "spec.nodeName"
	}
	if p, _, ok := strings.Cut(path, "['"); ok && strings.HasSuffix(path, "']") {
		if p != "metadata.labels" && p != "metadata.annotations" {
			return "", fmt.Errorf("field label does not support subscript: %s", path)
		}
		return volume.PodFieldValue(pod, path)
	}
	if !downwardFields[path] {
		return "", fmt.Errorf("field label not supported: %s", path)
	}
	podIPs := in.PodIPs
	if len(podIPs) == 0 {
		for _, ip := range pod.Status.PodIPs {
			podIPs = append(podIPs, ip.IP)
		}
	}
	hostIPs := in.HostIPs
	if len(hostIPs) == 0 {
		for _, ip := range pod.Status.HostIPs {
			hostIPs = append(hostIPs, ip.IP)
		}
	}
	switch path {
	case "spec.nodeName":
		if pod.Spec.NodeName != "" {
			return pod.Spec.NodeName, nil
		}
		return in.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		if len(podIPs) == 0 {
			return pod.Status.PodIP, nil
		}
		return podIPs[0], nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	case "status.hostIP", "status.hostIPs":
		if len(hostIPs) == 0 {
			return "", fmt.Errorf("%s: the node's IPs are not known yet", path)
		}
		if path == "status.hostIP" {
			return hostIPs[0], nil
		}
		return strings.Join(hostIPs, ","), nil
	}
	return volume.PodFieldValue(pod, path)
}
