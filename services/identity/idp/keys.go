package idp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// keyManager holds the signing keys in memory, loaded from the Store. The
// newest key that is not retired signs; every key not yet deleted is
// published in the JWKS, so that tokens signed before a rotation verify
// until they expire. It is safe for concurrent use.
type keyManager struct {
	store   Store
	seal    sealer
	rotate  time.Duration // a signing key older than this is replaced
	retain  time.Duration // a retired key stays published this long
	now     func() time.Time
	mu      sync.RWMutex
	signing *signingKey
	public  []op.Key
}

type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.PublicKey
}

func (k *publicKey) ID() string                         { return k.id }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k *publicKey) Use() string                        { return "sig" }
func (k *publicKey) Key() any                           { return k.key }

// refresh loads the keys, first adding a new one when none signs or the
// signing one is older than the rotation period, and deletes keys retired
// longer ago than the retention.
func (m *keyManager) refresh(ctx context.Context) error {
	now := m.now().UTC()
	keys, err := m.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	if current := newestSigning(keys); current == nil || now.Sub(current.CreatedAt) >= m.rotate {
		k, err := m.newKey(now)
		if err != nil {
			return err
		}
		if _, err := m.store.AddSigningKey(ctx, k, now.Add(-m.rotate)); err != nil {
			return fmt.Errorf("add signing key: %w", err)
		}
		if keys, err = m.store.SigningKeys(ctx); err != nil {
			return err
		}
	}
	if err := m.store.DeleteSigningKeysRetiredBefore(ctx, now.Add(-m.retain)); err != nil {
		return err
	}
	var (
		signing *signingKey
		public  []op.Key
	)
	for _, k := range keys {
		if !k.RetiredAt.IsZero() && now.Sub(k.RetiredAt) > m.retain {
			continue
		}
		der, err := m.seal.open(k.ID, k.PrivateDER)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return fmt.Errorf("signing key %s: %T is not a signer", k.ID, priv)
		}
		alg := jose.SignatureAlgorithm(k.Algorithm)
		public = append(public, &publicKey{id: k.ID, alg: alg, key: signer.Public()})
		if signing == nil && k.RetiredAt.IsZero() {
			signing = &signingKey{id: k.ID, alg: alg, key: signer}
		}
	}
	if signing == nil {
		return errors.New("no signing key")
	}
	m.mu.Lock()
	m.signing, m.public = signing, public
	m.mu.Unlock()
	return nil
}

func newestSigning(keys []StoredKey) *StoredKey {
	for i := range keys { // newest first
		if keys[i].RetiredAt.IsZero() {
			return &keys[i]
		}
	}
	return nil
}

// newStoredKey generates an RSA-2048 RS256 key, with the base64url SHA-256
// of its public key as key id.
func newStoredKey(now time.Time) (StoredKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return StoredKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return StoredKey{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return StoredKey{}, err
	}
	sum := sha256.Sum256(pub)
	return StoredKey{ID: base64.RawURLEncoding.EncodeToString(sum[:16]), Algorithm: string(jose.RS256), PrivateDER: der, CreatedAt: now}, nil
}

// newKey returns a new key, sealed when a key-encryption secret is set.
func (m *keyManager) newKey(now time.Time) (StoredKey, error) {
	k, err := newStoredKey(now)
	if err != nil {
		return StoredKey{}, err
	}
	k.PrivateDER, err = m.seal.seal(k.ID, k.PrivateDER)
	return k, err
}

func (m *keyManager) signingKey() (*signingKey, []op.Key) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.signing, m.public
}
