package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Names inside the admin kubeconfig.
const (
	KubeconfigCluster = "skiff"
	KubeconfigUser    = "admin"
	KubeconfigContext = "default"
)

// WriteKubeconfig writes the admin kubeconfig to path: cluster "skiff" at
// serverURL trusting the cluster CA, user "admin" with the admin client
// certificate, context "default" selected. Certificates and key are
// embedded, so the file stands alone. The file has mode 0600 and is
// replaced atomically; missing parent directories are created (0700).
func WriteKubeconfig(path, serverURL string, b *Bundle) error {
	if b == nil {
		return errors.New("kubeconfig: nil bundle")
	}
	caPEM, err := os.ReadFile(b.CAFile)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	certPEM, err := os.ReadFile(b.AdminCertFile)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	keyPEM, err := os.ReadFile(b.AdminKeyFile)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[KubeconfigCluster] = &clientcmdapi.Cluster{
		Server:                   serverURL,
		CertificateAuthorityData: caPEM,
	}
	cfg.AuthInfos[KubeconfigUser] = &clientcmdapi.AuthInfo{
		ClientCertificateData: certPEM,
		ClientKeyData:         keyPEM,
	}
	cfg.Contexts[KubeconfigContext] = &clientcmdapi.Context{
		Cluster:  KubeconfigCluster,
		AuthInfo: KubeconfigUser,
	}
	cfg.CurrentContext = KubeconfigContext
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return nil
}
