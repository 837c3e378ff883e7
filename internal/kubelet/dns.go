package kubelet

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// dnsConfig is the resolv.conf a pod gets, by its dnsPolicy and dnsConfig
// as upstream: ClusterFirst uses the cluster DNS with the namespace's search
// path and ndots:5; Default uses the node's resolver; None only dnsConfig.
func (k *Kubelet) dnsConfig(pod *corev1.Pod, warn bool) (*runtimeapi.DNSConfig, error) {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault // upstream: ClusterFirst with hostNetwork means Default
	}
	if policy == corev1.DNSClusterFirstWithHostNet {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && len(k.cfg.ClusterDNS) == 0 {
		if warn {
			k.recorder.Eventf(pod, corev1.EventTypeWarning, "MissingClusterDNS",
				"pod: %q. kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
				pod.Namespace+"/"+pod.Name, corev1.DNSClusterFirst, corev1.DNSDefault)
		}
		policy = corev1.DNSDefault
	}
	cfg := &runtimeapi.DNSConfig{}
	switch policy {
	case corev1.DNSClusterFirst:
		host, err := readResolvConf(k.cfg.ResolvConf)
		if err != nil {
			return nil, err
		}
		d := k.cfg.ClusterDomain
		cfg.Servers = append([]string(nil), k.cfg.ClusterDNS...)
		cfg.Searches = append([]string{pod.Namespace + ".svc." + d, "svc." + d, d}, host.Searches...)
		cfg.Options = []string{"ndots:5"}
	case corev1.DNSDefault:
		host, err := readResolvConf(k.cfg.ResolvConf)
		if err != nil {
			return nil, err
		}
		cfg = host
	case corev1.DNSNone:
	default:
		return nil, fmt.Errorf("unknown dnsPolicy %q", policy)
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		cfg.Servers = appendUnique(cfg.Servers, dc.Nameservers...)
		cfg.Searches = appendUnique(cfg.Searches, dc.Searches...)
		cfg.Options = mergeOptions(cfg.Options, dc.Options)
	}
	if len(cfg.Searches) > 32 {
		cfg.Searches = cfg.Searches[:32]
	}
	return cfg, nil
}

// readResolvConf parses the node's resolver configuration. A missing file
// is an empty configuration.
func readResolvConf(path string) (*runtimeapi.DNSConfig, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &runtimeapi.DNSConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node resolver: %w", err)
	}
	cfg := &runtimeapi.DNSConfig{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				cfg.Servers = append(cfg.Servers, f[1])
			}
		case "search", "domain":
			cfg.Searches = f[1:]
		case "options":
			cfg.Options = append(cfg.Options, f[1:]...)
		}
	}
	return cfg, nil
}

func appendUnique(list []string, add ...string) []string {
	seen := map[string]bool{}
	for _, s := range list {
		seen[s] = true
	}
	for _, s := range add {
		if !seen[s] {
			list = append(list, s)
			seen[s] = true
		}
	}
	return list
}

// mergeOptions overrides options of the same name with the pod's own.
func mergeOptions(base []string, pod []corev1.PodDNSConfigOption) []string {
	out := []string{}
	idx := map[string]int{}
	put := func(name, opt string) {
		if i, ok := idx[name]; ok {
			out[i] = opt
			return
		}
		idx[name] = len(out)
		out = append(out, opt)
	}
	for _, o := range base {
		put(strings.SplitN(o, ":", 2)[0], o)
	}
	for _, o := range pod {
		opt := o.Name
		if o.Value != nil {
			opt += ":" + *o.Value
		}
		put(o.Name, opt)
	}
	return out
}
