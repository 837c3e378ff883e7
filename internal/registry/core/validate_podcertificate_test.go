package core

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func TestValidatePodCertificateProjection(t *testing.T) {
	valid := func() *corev1.PodCertificateProjection {
		return &corev1.PodCertificateProjection{SignerName: "example.com/spiffe", KeyType: "ECDSAP256", CredentialBundlePath: "bundle.pem"}
	}
	const src = "spec.volumes[0].projected.sources[0].podCertificate"
	for _, tc := range []struct {
		name   string
		mutate func(p *corev1.PodCertificateProjection, v *corev1.ProjectedVolumeSource)
		want   []string
		// detail, when set, must be the detail of the only error.
		detail string
	}{
		{name: "valid bundle", mutate: func(*corev1.PodCertificateProjection, *corev1.ProjectedVolumeSource) {}},
		{name: "valid separate files and everything set", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) {
			p.CredentialBundlePath, p.KeyPath, p.CertificateChainPath = "", "tls.key", "tls.crt"
			p.KeyType = "ED25519"
			p.MaxExpirationSeconds = ptr.To[int32](7862400)
			p.UserAnnotations = map[string]string{"spiffe/path-overriding": "/custom", "Example.COM/x": "y"}
		}},
		{name: "every key type", mutate: func(p *corev1.PodCertificateProjection, v *corev1.ProjectedVolumeSource) {
			for i, kt := range podCertificateKeyTypes {
				q := *p
				q.KeyType = kt
				q.CredentialBundlePath = "b" + kt
				if i == 0 {
					*p = q
					continue
				}
				v.Sources = append(v.Sources, corev1.VolumeProjection{PodCertificate: &q})
			}
		}},
		{name: "bad signer name", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) { p.SignerName = "spiffe" },
			want: []string{"FieldValueInvalid " + src + ".signerName"}},
		{name: "no signer name", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) { p.SignerName = "" },
			want: []string{"FieldValueRequired " + src + ".signerName"}},
		{name: "unknown key type", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) { p.KeyType = "RSA2048" },
			want: []string{"FieldValueNotSupported " + src + ".keyType"}},
		{name: "no key type", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) { p.KeyType = "" },
			want: []string{"FieldValueNotSupported " + src + ".keyType"}},
		{name: "an hour is the least", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) {
			p.MaxExpirationSeconds = ptr.To[int32](3599)
		}, want: []string{"FieldValueInvalid " + src + ".maxExpirationSeconds"}, detail: "if provided, maxExpirationSeconds must be >= 3600"},
		{name: "91 days is the most", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) {
			p.MaxExpirationSeconds = ptr.To[int32](91*24*3600 + 1)
		}, want: []string{"FieldValueInvalid " + src + ".maxExpirationSeconds"}, detail: "if provided, maxExpirationSeconds must be <= 7862400"},
		{name: "a day for kubernetes.io signers", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) {
			p.SignerName = "kubernetes.io/kube-apiserver-client-pod"
			p.MaxExpirationSeconds = ptr.To[int32](86401)
		}, want: []string{"FieldValueInvalid " + src + ".maxExpirationSeconds"}, detail: "if provided, maxExpirationSeconds must be <= 86400"},
		{name: "no path", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) { p.CredentialBundlePath = "" },
			want: []string{"FieldValueRequired " + src}},
		{name: "absolute and escaping paths", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) {
			p.CredentialBundlePath, p.KeyPath, p.CertificateChainPath = "/etc/x", "../key", "..chain"
		}, want: []string{"FieldValueInvalid " + src + ".credentialBundlePath", "FieldValueInvalid " + src + ".keyPath",
			"FieldValueInvalid " + src + ".certificateChainPath"}},
		{name: "key and chain at one path", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) {
			p.CredentialBundlePath, p.KeyPath, p.CertificateChainPath = "", "tls", "tls"
		}, want: []string{"FieldValueInvalid spec.volumes[0].projected"}},
		{name: "path taken by another source", mutate: func(p *corev1.PodCertificateProjection, v *corev1.ProjectedVolumeSource) {
			v.Sources = append(v.Sources, corev1.VolumeProjection{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{
				SignerName: ptr.To("example.com/spiffe"), Path: "bundle.pem"}})
		}, want: []string{"FieldValueInvalid spec.volumes[0].projected"}},
		{name: "annotation key without a domain", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) {
			p.UserAnnotations = map[string]string{"path": "/x"}
		}, want: []string{"FieldValueInvalid " + src + ".userAnnotations"}},
		{name: "annotations too large", mutate: func(p *corev1.PodCertificateProjection, _ *corev1.ProjectedVolumeSource) {
			p.UserAnnotations = map[string]string{"example.com/big": strings.Repeat("x", 256*1024)}
		}, want: []string{"FieldValueTooLong " + src + ".userAnnotations"}},
		{name: "two sources in one", mutate: func(p *corev1.PodCertificateProjection, v *corev1.ProjectedVolumeSource) {
			v.Sources[0].ServiceAccountToken = &corev1.ServiceAccountTokenProjection{Path: "token"}
		}, want: []string{"FieldValueForbidden spec.volumes[0].projected.sources[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := validPod()
			proj := valid()
			vol := &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{PodCertificate: proj}}}
			tc.mutate(proj, vol)
			pod.Spec.Volumes = []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Projected: vol}}}
			errs := ValidatePodSpec(&pod.Spec, &pod.ObjectMeta, field.NewPath("spec"))
			assertErrKeys(t, errs, tc.want...)
			if tc.detail != "" && (len(errs) != 1 || errs[0].Detail != tc.detail) {
				t.Errorf("want the one error %q, got %v", tc.detail, errs)
			}
		})
	}
}
