package idp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sagittarius-a/sagittarius/services/identity/account"
)

// Accounts is what the provider reads of the accounts.
type Accounts interface {
	Account(ctx context.Context, id string) (account.Account, error)
	AccountByEmail(ctx context.Context, email string) (account.Account, error)
}

// storage implements op.Storage (with client credentials, claims from the
// request and userinfo from the request) on a Store and the accounts.
type storage struct {
	store    Store
	accounts Accounts
	keys     *keyManager
	cfg      Config
	now      func() time.Time
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
)

func hashToken(t string) []byte {
	s := sha256.Sum256([]byte(t))
	return s[:]
}

// serverError keeps store failures apart from "not found": the library
// answers a server_error with 500, anything else as a client error.
func serverError(err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, account.ErrNotFound) {
		return err
	}
	return oidc.ErrServerError().WithParent(err)
}

// --- auth requests --------------------------------------------------------

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired() // there is no session to reuse: every sign-in shows the page
	}
	// OAuth 2.1 / RFC 9700: PKCE with S256 for every authorization code request.
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	ar := AuthRequest{
		ID: uuid.NewString(), ClientID: req.ClientID, RedirectURI: req.RedirectURI, Scopes: req.Scopes,
		State: req.State, Nonce: req.Nonce, ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod), CreatedAt: s.now().UTC(),
	}
	if err := s.store.CreateAuthRequest(ctx, ar); err != nil {
		return nil, serverError(err)
	}
	return &authRequest{ar, s.cfg.Audience}, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	ar, err := s.store.AuthRequest(ctx, id)
	if err != nil {
		return nil, serverError(err)
	}
	if s.now().Sub(ar.CreatedAt) > s.cfg.AuthRequestLifetime {
		return nil, fmt.Errorf("auth request %s expired: %w", id, ErrNotFound)
	}
	return &authRequest{ar, s.cfg.Audience}, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	ar, err := s.store.AuthRequestByCode(ctx, hashToken(code))
	if err != nil {
		return nil, serverError(err)
	}
	if s.now().Sub(ar.CreatedAt) > s.cfg.AuthRequestLifetime {
		return nil, fmt.Errorf("code expired: %w", ErrNotFound)
	}
	return &authRequest{ar, s.cfg.Audience}, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.store.SaveAuthCode(ctx, id, hashToken(code))
}

func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.store.DeleteAuthRequest(ctx, id)
}

// --- tokens ---------------------------------------------------------------

// CreateAccessToken returns the id and expiry of a JWT access token: access
// tokens are not stored (they are short-lived and verified by signature).
func (s *storage) CreateAccessToken(ctx context.Context, _ op.TokenRequest) (string, time.Time, error) {
	return uuid.NewString(), s.now().Add(s.cfg.AccessTokenLifetime), nil
}

// CreateAccessAndRefreshTokens issues a refresh token: a new one for a code
// exchange, the next one of a rotation for a refresh (the used one is
// deleted in the same transaction, so it works once).
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.now().UTC()
	token, err := randomToken()
	if err != nil {
		return "", "", time.Time{}, err
	}
	rt := RefreshToken{
		ID: uuid.NewString(), Hash: hashToken(token), Subject: req.GetSubject(), Audience: req.GetAudience(),
		Scopes: req.GetScopes(), ExpiresAt: now.Add(s.cfg.RefreshTokenLifetime), CreatedAt: now,
	}
	switch r := req.(type) {
	case *authRequest:
		rt.ClientID, rt.AuthTime, rt.AMR = r.ClientID, r.AuthTime, r.GetAMR()
	case *refreshTokenRequest:
		rt.ClientID, rt.AuthTime, rt.AMR = r.ClientID, r.AuthTime, r.AMR
	default:
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("refresh tokens are issued for the authorization code flow only")
	}
	if current == "" {
		err = s.store.CreateRefreshToken(ctx, rt)
	} else {
		err = s.store.RotateRefreshToken(ctx, hashToken(current), rt)
	}
	if errors.Is(err, ErrNotFound) {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the refresh token was already used or revoked")
	}
	if err != nil {
		return "", "", time.Time{}, serverError(err)
	}
	return uuid.NewString(), token, now.Add(s.cfg.AccessTokenLifetime), nil
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	rt, err := s.store.RefreshToken(ctx, hashToken(token))
	if err != nil {
		return nil, serverError(err)
	}
	if !s.now().Before(rt.ExpiresAt) {
		return nil, fmt.Errorf("refresh token expired: %w", ErrNotFound)
	}
	// A disabled or removed account gets no new tokens.
	a, err := s.accounts.Account(ctx, rt.Subject)
	if err != nil {
		return nil, serverError(err)
	}
	if a.Status != account.StatusActive {
		return nil, fmt.Errorf("account %s is %s: %w", a.ID, a.Status, ErrNotFound)
	}
	return &refreshTokenRequest{RefreshToken: rt}, nil
}

func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	return s.store.DeleteRefreshTokens(ctx, userID, clientID)
}

// RevokeToken revokes a refresh token (RFC 7009). Access tokens are JWTs
// checked by signature and expire within AccessTokenLifetime: revoking one
// is accepted and has no effect.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	if userID != "" {
		return nil
	}
	rt, err := s.store.RefreshToken(ctx, hashToken(tokenOrID))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if rt.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
	}
	if err := s.store.DeleteRefreshToken(ctx, rt.Hash); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	rt, err := s.store.RefreshToken(ctx, hashToken(token))
	if err != nil || rt.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.Subject, rt.ID, nil
}

// --- keys -----------------------------------------------------------------

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	k, _ := s.keys.signingKey()
	if k == nil {
		return nil, errors.New("no signing key loaded")
	}
	return k, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	_, pub := s.keys.signingKey()
	return pub, nil
}

// --- clients --------------------------------------------------------------

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.store.Client(ctx, id)
	if err != nil {
		return nil, serverError(err)
	}
	return &client{c, s.cfg.LoginURL}, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.authenticateClient(ctx, id, secret)
	return err
}

// authenticateClient checks a confidential client's secret. Unknown clients
// cost a hash too, so that timing does not reveal which client ids exist.
func (s *storage) authenticateClient(ctx context.Context, id, secret string) (Client, error) {
	c, err := s.store.Client(ctx, id)
	if errors.Is(err, ErrNotFound) {
		account.SpendPasswordCheck(secret)
		return Client{}, errors.New("wrong client id or secret")
	}
	if err != nil {
		return Client{}, serverError(err)
	}
	if c.Public() || !account.CheckPassword(c.SecretHash, secret) {
		return Client{}, errors.New("wrong client id or secret")
	}
	return c, nil
}

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.authenticateClient(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	return &client{c, s.cfg.LoginURL}, nil
}

// ClientCredentialsTokenRequest grants the requested scopes when the client
// may have them all (invalid_scope otherwise), or every scope of the client
// when none is requested.
func (s *storage) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (op.TokenRequest, error) {
	c, err := s.store.Client(ctx, id)
	if err != nil {
		return nil, serverError(err)
	}
	granted := slices.Clone(c.Scopes)
	if len(scopes) > 0 {
		for _, sc := range scopes {
			if !slices.Contains(c.Scopes, sc) {
				return nil, oidc.ErrInvalidScope().WithDescription("this client may not have the scope %s", sc)
			}
		}
		granted = scopes
	}
	return &clientCredentialsRequest{clientID: c.ID, audience: []string{s.cfg.Audience}, scopes: granted, roles: c.Roles}, nil
}

// --- claims ---------------------------------------------------------------

// GetPrivateClaimsFromRequest adds roles, scope and (for a customer)
// customer_id to every access token.
func (s *storage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	claims := map[string]any{}
	if sc := req.GetScopes(); len(sc) > 0 {
		claims["scope"] = strings.Join(sc, " ")
	}
	if cc, ok := req.(*clientCredentialsRequest); ok {
		claims["roles"] = nonNil(cc.roles)
		return claims, nil
	}
	a, err := s.accounts.Account(ctx, req.GetSubject())
	if err != nil {
		return nil, serverError(err)
	}
	claims["roles"] = []string{string(a.Role)}
	if a.CustomerID != "" {
		claims["customer_id"] = a.CustomerID
	}
	return claims, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GetPrivateClaimsFromScopes is used by the library only when the storage
// cannot take claims from the request; it gives a person's claims.
func (s *storage) GetPrivateClaimsFromScopes(ctx context.Context, userID, _ string, scopes []string) (map[string]any, error) {
	return s.GetPrivateClaimsFromRequest(ctx, &oidc.JWTTokenRequest{Subject: userID, Scopes: scopes}, nil)
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil // deprecated by the library: SetUserinfoFromRequest does it
}

func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(ctx, info, req.GetSubject(), scopes)
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, _, subject, _ string) error {
	return s.setUserinfo(ctx, info, subject, []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail})
}

func (s *storage) setUserinfo(ctx context.Context, info *oidc.UserInfo, subject string, scopes []string) error {
	a, err := s.accounts.Account(ctx, subject)
	if err != nil {
		return serverError(err)
	}
	info.Subject = a.ID
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = a.Name
		info.PreferredUsername = a.Email
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = a.Email
		info.EmailVerified = false // nothing verifies e-mail addresses yet
	}
	info.AppendClaims("roles", []string{string(a.Role)})
	if a.CustomerID != "" {
		info.AppendClaims("customer_id", a.CustomerID)
	}
	return nil
}

func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, _, subject, clientID string) error {
	resp.Active = true
	resp.Subject = subject
	resp.ClientID = clientID
	if a, err := s.accounts.Account(ctx, subject); err == nil {
		resp.Username = a.Email
		resp.Active = a.Status == account.StatusActive
	}
	return nil
}

// GetKeyByIDAndClientID would serve the JWT profile grant (RFC 7523), which
// this provider does not offer.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (s *storage) Health(ctx context.Context) error { return s.store.Ping(ctx) }
