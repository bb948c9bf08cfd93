package idp

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
)

// sealedPrefix marks a signing key sealed with the key-encryption key. A
// plain PKCS#8 key starts with 0x30 (an ASN.1 SEQUENCE), never with this.
var sealedPrefix = []byte("sealed-aes256gcm-v1:")

// sealer encrypts signing keys at rest with AES-256-GCM under a key derived
// from the operator's secret (Config.KeyEncryptionSecret). The zero sealer
// stores keys in the clear.
type sealer struct{ aead cipher.AEAD }

func newSealer(secret string) (sealer, error) {
	if secret == "" {
		return sealer{}, nil
	}
	if len(secret) < 32 {
		return sealer{}, errors.New("idp: the key-encryption secret must have at least 32 characters")
	}
	k := sha256.Sum256([]byte("sagittarius idp signing keys\x00" + secret))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, err
	}
	return sealer{aead: aead}, nil
}

// seal returns der sealed (prefix, nonce, ciphertext), or der itself when no
// secret is configured. The key id is authenticated with it, so a sealed key
// cannot be moved to another row.
func (s sealer) seal(kid string, der []byte) ([]byte, error) {
	if s.aead == nil {
		return der, nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append([]byte{}, sealedPrefix...), nonce...)
	return s.aead.Seal(out, nonce, der, []byte(kid)), nil
}

// open returns the PKCS#8 DER of a stored key, sealed or not.
func (s sealer) open(kid string, stored []byte) ([]byte, error) {
	rest, sealed := bytes.CutPrefix(stored, sealedPrefix)
	if !sealed {
		return stored, nil
	}
	if s.aead == nil {
		return nil, errors.New("the key is sealed and no key-encryption secret is configured (IDENTITY_KEY_ENCRYPTION_SECRET_FILE)")
	}
	n := s.aead.NonceSize()
	if len(rest) < n {
		return nil, errors.New("sealed key too short")
	}
	der, err := s.aead.Open(nil, rest[:n], rest[n:], []byte(kid))
	if err != nil {
		return nil, errors.New("the key cannot be unsealed: wrong key-encryption secret, or the row was changed")
	}
	return der, nil
}

// OpenSigningKey returns the private key of a stored signing key (a row of
// oauth_signing_keys: its id and private_der), unsealing it with the
// key-encryption secret when it is sealed. It is what anyone holding both
// the database and the secret can do; the attack tests (e2e) use it to sign
// tokens with the platform's real key whose claims are wrong, to prove the
// claims are checked, not only the signature.
func OpenSigningKey(keyEncryptionSecret, kid string, stored []byte) (crypto.Signer, error) {
	s, err := newSealer(keyEncryptionSecret)
	if err != nil {
		return nil, err
	}
	der, err := s.open(kid, stored)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("idp: the stored key cannot sign")
	}
	return signer, nil
}
