// Package idp is the embedded OpenID provider of iam.accounts, built on the
// provider package of github.com/zitadel/oidc/v3 (op): discovery, JWKS, the
// authorization endpoint with its sign-in page, and the token endpoint with
// the authorization-code (PKCE required), refresh-token and
// client-credentials grants. The library speaks the protocol; this package
// gives it storage (Store, in MySQL), the accounts, the signing keys (kept
// in the database and rotated) and the claims of Sagittarius' access
// tokens:
//
//	iss, sub, aud (the platform audience and the client), exp, iat, nbf, jti, client_id
//	roles        ["customer"], ["staff"], ["operator"] or a machine client's roles
//	scope        the granted scopes, space-separated (RFC 9068)
//	customer_id  for a customer: the customer the token identifies
//
// Its HTTP surface is the protocol's, not a REST API: see Provider.Handler.
package idp

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Grant types a client may use.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// ErrNotFound: no such client, auth request, refresh token or secret.
var ErrNotFound = errors.New("idp: not found")

// Client is an OAuth client registered with the provider.
type Client struct {
	ID   string
	Name string
	// SecretHash is the argon2id hash of the client secret (account.HashPassword);
	// "" for a public client (a native app or CLI), which must use PKCE.
	SecretHash   string
	RedirectURIs []string // loopback URIs match on any port (RFC 8252)
	GrantTypes   []string
	// Scopes the client may be granted besides the OpenID ones (openid,
	// profile, email, offline_access). A client-credentials request without
	// a scope is granted all of them.
	Scopes []string
	// Roles of the tokens the client gets for itself (client credentials):
	// a staff tool is a client with role staff.
	Roles     []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Public reports whether c has no secret.
func (c Client) Public() bool { return c.SecretHash == "" }

// Allows reports whether c may use grant.
func (c Client) Allows(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// AuthRequest is an authorization request between /authorize and the token
// endpoint: created by the provider, completed by the sign-in page, turned
// into tokens once (its code is single-use) and deleted.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Subject             string    // the account that signed in; "" before
	AuthTime            time.Time // when it signed in
	Done                bool
	CreatedAt           time.Time
}

// RefreshToken is the stored half of a refresh token: the token itself is
// only given to the client; the store keeps its SHA-256.
type RefreshToken struct {
	ID        string
	Hash      []byte // SHA-256 of the token
	ClientID  string
	Subject   string
	Audience  []string
	Scopes    []string
	AMR       []string
	AuthTime  time.Time
	ExpiresAt time.Time
	CreatedAt time.Time
}

// StoredKey is a signing key as stored: PKCS#8 DER of the private key.
type StoredKey struct {
	ID         string
	Algorithm  string // RS256
	PrivateDER []byte
	CreatedAt  time.Time
	RetiredAt  time.Time // zero while the key signs
}

// Store keeps what the provider needs between requests and across restarts
// and instances. Each method is one transaction. Implementations are safe
// for concurrent use.
type Store interface {
	// Client returns the client with id, or ErrNotFound.
	Client(ctx context.Context, id string) (Client, error)
	// SaveClient creates c or replaces the client with c's id.
	SaveClient(ctx context.Context, c Client) error

	CreateAuthRequest(ctx context.Context, r AuthRequest) error
	// AuthRequest returns the request with id, or ErrNotFound.
	AuthRequest(ctx context.Context, id string) (AuthRequest, error)
	// AuthRequestByCode returns the request whose code has SHA-256 codeHash, or ErrNotFound.
	AuthRequestByCode(ctx context.Context, codeHash []byte) (AuthRequest, error)
	// SaveAuthCode records the SHA-256 of the code issued for request id.
	SaveAuthCode(ctx context.Context, id string, codeHash []byte) error
	// CompleteAuthRequest records that subject signed in for request id at
	// authTime; ErrNotFound when the request is gone.
	CompleteAuthRequest(ctx context.Context, id, subject string, authTime time.Time) error
	// DeleteAuthRequest deletes request id (no error when it is gone).
	DeleteAuthRequest(ctx context.Context, id string) error

	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshToken returns the token with SHA-256 hash, or ErrNotFound.
	RefreshToken(ctx context.Context, hash []byte) (RefreshToken, error)
	// RotateRefreshToken replaces the token with SHA-256 oldHash by next, or
	// returns ErrNotFound when oldHash was already used or revoked.
	RotateRefreshToken(ctx context.Context, oldHash []byte, next RefreshToken) error
	// DeleteRefreshToken deletes the token with SHA-256 hash (no error when gone).
	DeleteRefreshToken(ctx context.Context, hash []byte) error
	// DeleteRefreshTokens deletes subject's tokens of clientID.
	DeleteRefreshTokens(ctx context.Context, subject, clientID string) error

	// SigningKeys returns every stored key, newest first.
	SigningKeys(ctx context.Context) ([]StoredKey, error)
	// AddSigningKey stores k and retires every other key still signing, at
	// k.CreatedAt; unless a signing key newer than notBefore exists (another
	// instance rotated meanwhile): then it stores nothing and returns false.
	AddSigningKey(ctx context.Context, k StoredKey, notBefore time.Time) (bool, error)
	// DeleteSigningKeysRetiredBefore deletes keys retired before t.
	DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) error

	// Secret returns the secret stored under name, storing value first when
	// there is none yet: the first instance to start decides it.
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)

	// Sweep deletes auth requests created before requestsBefore and refresh
	// tokens expired before now.
	Sweep(ctx context.Context, requestsBefore, now time.Time) error
	// Ping checks the database.
	Ping(ctx context.Context) error
}
