// Package encryption encrypts stored objects at rest, as upstream's
// --encryption-provider-config does: it reads upstream's
// EncryptionConfiguration (apiserver.config.k8s.io/v1), builds for each
// resource a list of providers (aescbc, aesgcm, secretbox, identity), and
// hands the storage codec a Transformer that encrypts every value before
// it goes to etcd and decrypts every value read back — by Get, List, the
// watch cache and watch events alike.
//
// Stored values keep upstream's layout: "k8s:enc:<provider>:v1:<key>:"
// then the provider's payload (aescbc: IV and CBC ciphertext; secretbox:
// nonce and box; aesgcm: nonce and sealed value), so a value names the key
// that reads it. The first key of a resource's first provider writes;
// every key reads. A value read with any other key is stale, so that a
// no-op update rewrites it under the first key: that is how keys are
// rotated (add a key first, rewrite every object, drop the old key).
//
// Where skiff differs from upstream: aesgcm does not authenticate the etcd
// key as additional data (see gcmSeal); KMS providers are refused; a
// resource named in capitals or as "*", and two keys of one provider with
// one name, are configuration errors.
//
// Secrets never reach a log: Key redacts itself when printed or logged,
// validation errors say REDACTED, decryption errors say only that a value
// does not decrypt.
package encryption
