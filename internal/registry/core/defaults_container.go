package core

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Container defaults, as upstream's SetDefaults_Container and the generated
// defaulters set them.
const (
	defaultTerminationMessagePath = corev1.TerminationMessagePathDefault
	defaultProbeTimeoutSeconds    = 1
	defaultProbePeriodSeconds     = 10
	defaultProbeSuccessThreshold  = 1
	defaultProbeFailureThreshold  = 3
)

// defaultContainer fills in one container's defaults. It is shared by
// regular, init and ephemeral containers.
func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = pullPolicyForImage(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = defaultTerminationMessagePath
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil && vf.FieldRef.APIVersion == "" {
			vf.FieldRef.APIVersion = "v1"
		}
	}
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
	if c.Lifecycle != nil {
		defaultLifecycleHandler(c.Lifecycle.PostStart)
		defaultLifecycleHandler(c.Lifecycle.PreStop)
	}
	defaultResourceList(c.Resources.Limits)
	defaultResourceList(c.Resources.Requests)
}

// pullPolicyForImage is upstream's rule: Always when the image's tag is
// "latest" (which a reference with neither tag nor digest implies),
// IfNotPresent otherwise.
func pullPolicyForImage(image string) corev1.PullPolicy {
	if imageTag(image) == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// imageTag returns the tag of an image reference: "latest" when the
// reference has neither a tag nor a digest, "" when it has only a digest.
func imageTag(image string) string {
	name, digest, hasDigest := strings.Cut(image, "@")
	_ = digest
	// The tag is after the last ':' that follows the last '/', so that a
	// registry port ("host:5000/app") is not taken for a tag.
	lastSlash := strings.LastIndex(name, "/")
	if i := strings.LastIndex(name, ":"); i > lastSlash {
		return name[i+1:]
	}
	if hasDigest {
		return ""
	}
	return "latest"
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = defaultProbeTimeoutSeconds
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = defaultProbePeriodSeconds
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = defaultProbeSuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = defaultProbeFailureThreshold
	}
	defaultHTTPGet(p.HTTPGet)
	if p.GRPC != nil && p.GRPC.Service == nil {
		empty := ""
		p.GRPC.Service = &empty
	}
}

func defaultLifecycleHandler(h *corev1.LifecycleHandler) {
	if h == nil {
		return
	}
	defaultHTTPGet(h.HTTPGet)
}

func defaultHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

// defaultResourceList rounds every quantity up to milli precision, as
// upstream's SetDefaults_ResourceList does ("0.0001" CPU becomes "1m").
func defaultResourceList(l corev1.ResourceList) {
	for name, q := range l {
		q.RoundUp(-3)
		l[name] = q
	}
}
