package envvars

import (
	"net"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceEnv returns the service variables pod should see: those of
// default/kubernetes always, and those of its own namespace's Services
// unless spec.enableServiceLinks is false (a same-named Service in the
// pod's namespace wins over default/kubernetes, as upstream).
func serviceEnv(pod *v1.Pod, services []*v1.Service) map[string]string {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	picked := map[string]*v1.Service{}
	for _, s := range services {
		if s.Namespace == metav1.NamespaceDefault && s.Name == "kubernetes" {
			if _, ok := picked[s.Name]; !ok {
				picked[s.Name] = s
			}
		}
	}
	if links {
		for _, s := range services {
			if s.Namespace == pod.Namespace {
				picked[s.Name] = s
			}
		}
	}
	env := map[string]string{}
	for _, s := range picked {
		addServiceVars(env, s)
	}
	return env
}

// addServiceVars adds one Service's variables: NAME_SERVICE_HOST,
// NAME_SERVICE_PORT (first port), NAME_SERVICE_PORT_<PORTNAME> (named
// ports) and the Docker link variables NAME_PORT, NAME_PORT_<n>_<PROTO>,
// ..._PROTO, ..._PORT, ..._ADDR. Services without a cluster IP are skipped.
func addServiceVars(env map[string]string, s *v1.Service) {
	ip := s.Spec.ClusterIP
	if ip == "" || ip == v1.ClusterIPNone || len(s.Spec.Ports) == 0 {
		return
	}
	prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
	env[prefix+"_SERVICE_HOST"] = ip
	env[prefix+"_SERVICE_PORT"] = strconv.Itoa(int(s.Spec.Ports[0].Port))
	for i, p := range s.Spec.Ports {
		port := strconv.Itoa(int(p.Port))
		if p.Name != "" {
			env[prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))] = port
		}
		proto := string(v1.ProtocolTCP)
		if p.Protocol != "" {
			proto = string(p.Protocol)
		}
		url := strings.ToLower(proto) + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			env[prefix+"_PORT"] = url
		}
		pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		env[pp] = url
		env[pp+"_PROTO"] = strings.ToLower(proto)
		env[pp+"_PORT"] = port
		env[pp+"_ADDR"] = ip
	}
}
