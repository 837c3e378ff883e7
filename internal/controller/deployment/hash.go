package deployment

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// templateHash is the pod-template-hash of a Deployment's pod template: the
// suffix of the ReplicaSet name and the value of the pod-template-hash
// label. Like upstream it is a 32-bit FNV-1a hash, salted with the
// collision count, encoded with the safe alphabet of rand.SafeEncodeString
// (at most 10 characters). Unlike upstream it hashes the template's JSON
// encoding rather than a spew dump: encoding/json writes struct fields in
// declaration order and map keys sorted, so the hash is stable across
// restarts and processes (it may change when k8s.io/api adds fields, which
// upstream's does too, and which is why the new ReplicaSet is found by
// comparing templates, never by hash).
func templateHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	if template != nil {
		b, err := json.Marshal(template)
		if err != nil {
			// A PodTemplateSpec always marshals; fall back to its Go
			// representation rather than fail.
			b = fmt.Appendf(nil, "%#v", *template)
		}
		_, _ = h.Write(b)
	}
	if collisionCount != nil {
		var buf [8]byte
		binary.LittleEndian.PutUint32(buf[:4], uint32(*collisionCount))
		_, _ = h.Write(buf[:4])
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}
