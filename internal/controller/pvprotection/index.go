package pvprotection

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-helpers/storage/ephemeral"
)

// IndexPodsByClaim indexes a pod by the "namespace/name" key of every claim
// its volumes use: a persistentVolumeClaim volume's claim and a generic
// ephemeral volume's claim (<pod>-<volume>), as upstream's PodPVCIndex.
const IndexPodsByClaim = "pvprotection.skiff.io/pods-by-claim"

// AddPodClaimIndex registers IndexPodsByClaim on a pod informer unless it
// is already there (another controller registered it). Call it before the
// informer starts; concurrent calls on one informer are not supported.
func AddPodClaimIndex(inf cache.SharedIndexInformer) error {
	if inf == nil {
		return fmt.Errorf("index %s: nil informer", IndexPodsByClaim)
	}
	if _, ok := inf.GetIndexer().GetIndexers()[IndexPodsByClaim]; ok {
		return nil
	}
	if err := inf.AddIndexers(cache.Indexers{IndexPodsByClaim: indexPodByClaim}); err != nil {
		return fmt.Errorf("index %s: %w", IndexPodsByClaim, err)
	}
	return nil
}

// PodsUsingClaim returns the pods in indexer (which carries
// IndexPodsByClaim) that name the claim namespace/name in a volume,
// whatever their phase.
func PodsUsingClaim(indexer cache.Indexer, namespace, name string) ([]*corev1.Pod, error) {
	objs, err := indexer.ByIndex(IndexPodsByClaim, namespace+"/"+name)
	if err != nil {
		return nil, fmt.Errorf("pods using claim %s/%s: %w", namespace, name, err)
	}
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func indexPodByClaim(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	return claimKeys(pod), nil
}

// claimKeys returns the "namespace/name" keys of the claims pod's volumes
// use.
func claimKeys(pod *corev1.Pod) []string {
	var keys []string
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		switch {
		case v.PersistentVolumeClaim != nil:
			keys = append(keys, pod.Namespace+"/"+v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			keys = append(keys, pod.Namespace+"/"+ephemeral.VolumeClaimName(pod, v))
		}
	}
	return keys
}
