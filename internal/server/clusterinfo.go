package server

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/skiff-io/skiff/internal/authorizer/rbac"
)

// The kube-public/cluster-info ConfigMap, as kubeadm publishes it: a
// kubeconfig naming the server and holding the cluster CA, which a joining
// agent without the CA reads (and checks, once joins carry the CA's hash).
// With RBAC it is the one object of kube-public everybody may read.
const (
	clusterInfoNamespace = "kube-public"
	clusterInfoName      = "cluster-info"
	clusterInfoKey       = "kubeconfig"
	clusterInfoRole      = "kubeadm:bootstrap-signer-clusterinfo"
)

// clusterInfoKubeconfig is the kubeconfig cluster-info holds: one cluster,
// named "" as kubeadm's, with the server URL and CA.
func clusterInfoKubeconfig(url string, caPEM []byte) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[""] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: caPEM}
	return clientcmd.Write(*cfg)
}

// ensureClusterInfo creates or updates cluster-info and the Role and
// RoleBinding that let anyone read it.
func ensureClusterInfo(ctx context.Context, cs kubernetes.Interface, kubeconfig []byte) error {
	cms := cs.CoreV1().ConfigMaps(clusterInfoNamespace)
	want := string(kubeconfig)
	cm, err := cms.Get(ctx, clusterInfoName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: clusterInfoName, Namespace: clusterInfoNamespace},
			Data:       map[string]string{clusterInfoKey: want},
		}, metav1.CreateOptions{})
	case err == nil && cm.Data[clusterInfoKey] != want:
		cm = cm.DeepCopy()
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[clusterInfoKey] = want
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("configmap %s/%s: %w", clusterInfoNamespace, clusterInfoName, err)
	}
	labels := map[string]string{rbac.BootstrappingLabel: rbac.BootstrappingValue}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: clusterInfoRole, Namespace: clusterInfoNamespace, Labels: labels},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{clusterInfoName}, Verbs: []string{"get"}}},
	}
	if _, err := cs.RbacV1().Roles(clusterInfoNamespace).Create(ctx, role, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return fmt.Errorf("role %s/%s: %w", clusterInfoNamespace, clusterInfoRole, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: clusterInfoRole, Namespace: clusterInfoNamespace, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: clusterInfoRole},
		Subjects: []rbacv1.Subject{
			{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "system:anonymous"},
			{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: rbac.GroupAuthenticated},
		},
	}
	if _, err := cs.RbacV1().RoleBindings(clusterInfoNamespace).Create(ctx, binding, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return fmt.Errorf("rolebinding %s/%s: %w", clusterInfoNamespace, clusterInfoRole, err)
	}
	return nil
}
