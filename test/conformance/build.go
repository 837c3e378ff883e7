package conformance

import "strings"

// versionFlags sets the version a release build carries, as upstream's
// hack/lib/version.sh does. Without it `kubectl version` reports
// v0.0.0-master+$Format:%H$ and fails to parse it (the conformance test
// "Kubectl version should check is all data is printed"), and e2e.test picks
// Pod Security fixtures for version v0.0, which has none ("failed to get
// minimal valid pod" in the projected PodCertificate mTLS test).
func versionFlags(version string) string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	var flags []string
	for _, pkg := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		flags = append(flags, "-X "+pkg+".gitVersion="+version, "-X "+pkg+".gitMajor="+major,
			"-X "+pkg+".gitMinor="+minor, "-X "+pkg+".gitTreeState=clean")
	}
	return strings.Join(flags, " ")
}
