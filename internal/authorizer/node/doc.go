// Package node is skiff's Node authorizer, with the semantics of
// upstream's (k8s.io/kubernetes plugin/pkg/auth/authorizer/node): it
// decides the requests of kubelets, users "system:node:<name>" in group
// "system:nodes", so that a node reads only what the pods bound to it
// need.
//
// # Decisions
//
//   - secrets, configmaps: get, list and watch of one named object that a
//     pod bound to the node references (image pull secrets, env, envFrom,
//     secret/configMap/projected volumes, the secret refs of the in-tree
//     volume plugins, CSI nodePublishSecretRef);
//   - persistentvolumeclaims: get of a claim such a pod mounts (ephemeral
//     volumes included), and update/patch of its status;
//     persistentvolumes: get of a volume whose spec.claimRef names such a
//     claim;
//   - skiff's local-path volumes (internal/localpath): list and watch with
//     the label selector skiff.io/local-path-node=<node>, and get, update
//     and patch of the volumes so labelled (NodeRestriction lets an update
//     only drop the local-path finalizer), so that a node removes the
//     directories of its deleted volumes;
//   - serviceaccounts: get of the service account of such a pod, and
//     create of its token subresource;
//   - podcertificaterequests: create (NodeRestriction limits a request to
//     a pod bound to the node), and list and watch with the field selector
//     spec.nodeName=<node>; not get, which upstream allows for the node's
//     requests through a graph of them that skiff does not keep;
//   - leases in kube-node-lease and csinodes: only the node's own (create
//     is left to the NodeRestriction admission plugin, which sees the
//     name);
//   - everything else: the generic rules of the bootstrap ClusterRole
//     "system:node" (nodes, pods, services, events, reviews, ...), the
//     writes among them narrowed by NodeRestriction admission.
//
// The authorizer never denies: a request it does not allow has no opinion
// and a reason ("no relationship found between node 'a' and this
// object"), and the next authorizer in --authorization-mode (RBAC) is
// asked, as upstream's union authorizer does. Requests of any other user
// have no opinion and no reason.
//
// Unlike upstream, pods and nodes are not narrowed by field selectors
// (upstream's AuthorizeNodeWithSelectors), so a node may list every pod
// and node as before that feature; volumeattachments, resourceclaims and
// resourceslices are not part of the graph.
//
// # The graph
//
// What a node may read is kept as reference counts keyed by (node, kind,
// namespace, name), maintained from pod and persistent volume informer
// events: PutPod subtracts what the pod's previous version granted and
// adds what the new one does, so a decision is one or two map lookups
// under a read lock, whatever the number of pods, and an event costs the
// size of one pod's references. A status-only update (the common event)
// finds the references unchanged and changes nothing.
package node
