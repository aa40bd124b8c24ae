package web

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"passgate/assets"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// Login session and throttling settings.
const (
	// SessionCookie names the cookie that carries a login session token.
	SessionCookie = "passgate_session"
	// sessionTTL is how long a session lives without use (sliding).
	sessionTTL = 12 * time.Hour
	// sessionTouchEvery bounds how often a session's expiry is moved, so
	// that a busy gate screen does not cost a database write per request.
	sessionTouchEvery = time.Minute
	// purgeEvery bounds how often expired sessions are deleted.
	purgeEvery = time.Hour

	// Failed logins allowed per window. A stranger must not be able to
	// lock a known account (admin) out by guessing at it, so the tight
	// limit is per account AND address: guesses from one address lock
	// out that address for that account only. An office behind one
	// address has several people, so the address's own limit is higher.
	// Guesses spread over many addresses meet the account's looser limit,
	// which then refuses addresses the account never logged in from;
	// one it did log in from keeps its own per-pair limit and is never
	// locked out by others (OWASP's "device cookie" idea, with the
	// address as the device).
	pairAttempts    = 5
	addressAttempts = 20
	accountAttempts = 100
	attemptWindow   = 15 * time.Minute
	// knownFor is how long a successful login vouches for its address.
	knownFor = 30 * 24 * time.Hour
	// throttleEntries bounds each throttle table's memory.
	throttleEntries = 10000

	// defaultNext is a login not sent from a page: it lands on the
	// user's own page (landing).
	defaultNext = ""
	// maxLoginFormBytes bounds a login or language form.
	maxLoginFormBytes = 16 << 10
)

// dummyHash is an argon2id hash of a password nobody uses, with the same
// parameters as real ones. A login for an unknown or disabled account is
// checked against it, so that it takes as long as a wrong password for a
// real account and the response time does not tell which names exist.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$V63V/YD9G5vuaBq0hkQleg$N7G7vqm/O5B/ytGyM6MA64JOyoIIfxmWO/E0plxfRgc"

// authState holds login throttling and session settings.
type authState struct {
	pairs     *loginThrottle // failed logins per account name (lower case) and address
	addresses *loginThrottle // failed logins per client address
	accounts  *loginThrottle // failed logins per account name, from any address
	known     *loginThrottle // account and address pairs that logged in successfully
	reported  *loginThrottle // throttle keys whose refusals are in the audit trail this window
	now       func() time.Time

	mu         sync.Mutex
	lastPurged time.Time
}

func newAuthState() *authState {
	return &authState{
		pairs:     newLoginThrottle(pairAttempts, attemptWindow, throttleEntries),
		addresses: newLoginThrottle(addressAttempts, attemptWindow, throttleEntries),
		accounts:  newLoginThrottle(accountAttempts, attemptWindow, throttleEntries),
		known:     newLoginThrottle(1, knownFor, throttleEntries),
		reported:  newLoginThrottle(1, attemptWindow, throttleEntries),
		now:       time.Now,
	}
}

// purgeDue reports whether expired sessions should be purged now, and if
// so records that they are being purged.
func (a *authState) purgeDue() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if now.Sub(a.lastPurged) < purgeEvery {
		return false
	}
	a.lastPurged = now
	return true
}

// sessionUser returns the user of the request's session cookie, or nil
// for an anonymous request. An unknown, expired or revoked session, or one
// of a disabled user, is anonymous; its cookie is cleared. A live session
// is extended (sliding expiry), at most once a minute.
func (s *Server) sessionUser(w http.ResponseWriter, r *http.Request) (*store.User, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	sess, u, err := s.db.FindSession(r.Context(), c.Value)
	if errors.Is(err, store.ErrNotFound) {
		clearSessionCookie(w, r)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The store's clock decides expiry, so it decides when to extend too.
	if s.db.Now().Sub(sess.LastSeen) >= sessionTouchEvery {
		// A failed touch only shortens the session: the request itself
		// may go on.
		if err := s.db.TouchSession(r.Context(), c.Value, sessionTTL); err != nil {
			s.log.Warn("touch session", "user", u.Username, "err", err)
		} else {
			setSessionCookie(w, r, c.Value)
		}
	}
	return u, nil
}

// setSessionCookie sends the session token: not readable by scripts, not
// sent with cross-site subrequests or form posts, and only over TLS when
// the appliance is reached over TLS. Its lifetime matches the server-side
// session's, which is what really decides.
func setSessionCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/",
		MaxAge: int(sessionTTL / time.Second), HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
}

func clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
}

// safeNext returns next if it is a path on this site, else defaultNext.
// The site's root is no destination of its own: it too is defaultNext.
// Only "/path?query" forms are accepted: "//host", "/\host" (which
// browsers read as "//host"), absolute URLs and anything with control
// characters would let a crafted login link send the user elsewhere.
func safeNext(next string) string {
	if next == "" || next == "/" || len(next) > 2048 || next[0] != '/' {
		return defaultNext
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return defaultNext
	}
	if strings.ContainsFunc(next, func(r rune) bool { return unicode.IsControl(r) || r == '\\' }) {
		return defaultNext
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return defaultNext
	}
	if next == "/login" || strings.HasPrefix(next, "/login?") {
		return defaultNext // never loop back to the login page
	}
	return next
}

// remoteHost is the address a request came from, without the port. Headers
// such as X-Forwarded-For are ignored: anyone can send them, and trusting
// them would let a guesser pick a fresh address for every attempt.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginPage renders the login form with status.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, m view.Login) {
	p := s.page(r, "login.title")
	p.CSS = append(p.CSS, assets.Path("/assets/", "auth.css"))
	// The language switch returns to this form with its destination.
	p.Path = "/login"
	if m.Next != defaultNext {
		p.Path += "?next=" + url.QueryEscape(m.Next)
	}
	s.render(w, r, status, view.LoginPage(p, m))
}

// handleLoginForm shows the login form, or sends a logged-in user on.
func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	u, err := s.sessionUser(w, r)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if u != nil {
		http.Redirect(w, r, s.landingFor(r.Context(), u.Role, next), http.StatusSeeOther)
		return
	}
	s.loginPage(w, r, http.StatusOK, view.Login{Next: next})
}

// handleLogin checks a username and password and starts a session. Every
// failure gets the same message, whether the name exists or not.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	t := i18n.FromRequest(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginFormBytes)
	if err := r.ParseForm(); err != nil {
		s.loginPage(w, r, http.StatusUnprocessableEntity, view.Login{Next: defaultNext, Error: t.T("login.bad_form")})
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	m := view.Login{Username: name, Next: safeNext(r.PostForm.Get("next"))}
	if name == "" || password == "" {
		m.Error = t.T("login.missing")
		s.loginPage(w, r, http.StatusUnprocessableEntity, m)
		return
	}

	account, addr, now := strings.ToLower(name), remoteHost(r), s.auth.now()
	if wait, by, key := s.throttled(account, addr, now); wait > 0 {
		s.auditThrottled(r, name, addr, by, key, now)
		minutes := int((wait + time.Minute - time.Second) / time.Minute)
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		m.Error = t.T("login.throttled", minutes)
		s.loginPage(w, r, http.StatusTooManyRequests, m)
		return
	}
	// Count the attempt before checking it, so that many guesses sent at
	// once cannot all pass the limit; a success takes it back.
	pair := pairKey(account, addr)
	s.auth.pairs.add(pair, now)
	s.auth.addresses.add(addr, now)
	s.auth.accounts.add(account, now)

	u, ok, err := s.verifyLogin(r, name, password)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if !ok {
		s.refuseLogin(r, name, addr, u)
		m.Error = t.T("login.failed")
		s.loginPage(w, r, http.StatusUnprocessableEntity, m)
		return
	}
	s.auth.pairs.reset(pair)
	s.auth.addresses.undo(addr)
	s.auth.accounts.undo(account)
	s.auth.known.reset(pair)
	s.auth.known.add(pair, now)
	s.startSession(w, r, u, addr, m.Next)
}

// verifyLogin finds the account name and checks password against it.
// ok is false for a wrong password, an unknown name (u nil) and a
// disabled account alike, and the check takes as long in each case.
func (s *Server) verifyLogin(r *http.Request, name, password string) (u *store.User, ok bool, err error) {
	u, err = s.db.FindUserByName(r.Context(), name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	hash := dummyHash
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err = store.VerifyPassword(hash, password)
	if err != nil {
		// A stored hash that cannot be read is a fault of the data, not of
		// the user: log it, answer like a wrong password.
		s.log.Error("verify password", "user", name, "err", err)
		ok = false
	}
	return u, ok && u != nil && u.DisabledAt.IsZero(), nil
}

// refuseLogin logs and records a login refused for a wrong password, an
// unknown name (u nil) or a disabled account.
func (s *Server) refuseLogin(r *http.Request, name, addr string, u *store.User) {
	s.log.Info("login failed", "user", name, "addr", addr)
	why := "unknown_user"
	if u != nil {
		why = "bad_password"
		if !u.DisabledAt.IsZero() {
			why = "disabled"
		}
	}
	// The attempt is refused whatever happens to its record: a failed
	// append is logged, not shown.
	if err := s.db.RefuseLogin(r.Context(), store.LoginRefusal{User: u, Addr: addr, Outcome: why}); err != nil {
		s.log.Error("audit failed login", "err", err)
	}
}

// startSession starts a session for u, who logged in from addr, and
// sends the browser on to next. A login that cannot be recorded does not
// happen: the user sees an error and gets no session.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u *store.User, addr, next string) {
	if s.auth.purgeDue() {
		if n, err := s.db.PurgeSessions(r.Context()); err != nil {
			s.log.Warn("purge sessions", "err", err)
		} else if n > 0 {
			s.log.Info("purged expired sessions", "count", n)
		}
	}
	l := store.Login{User: u, Addr: addr, TTL: sessionTTL}
	// A session cookie sent along with the login (another user's, or an
	// old one of this browser) is ended: one browser, one session.
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		l.Previous = c.Value
	}
	token, err := s.db.Login(r.Context(), l)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.Info("login", "user", u.Username, "role", u.Role, "addr", addr)
	setSessionCookie(w, r, token)
	http.Redirect(w, r, s.landingFor(r.Context(), u.Role, next), http.StatusSeeOther)
}

// pairKey keys the account and address tables; a NUL is in neither.
func pairKey(account, addr string) string { return account + "\x00" + addr }

// throttled returns how long a login to account from addr must wait
// before another attempt, or 0 if it may try now: the pair or the
// address used up its attempts, or the account did and this address is
// not one it logged in from. It also names the limit that holds the
// longest ("pair", "address", "account") and that limit's key.
func (s *Server) throttled(account, addr string, now time.Time) (wait time.Duration, by, key string) {
	pair := pairKey(account, addr)
	if b, d := s.auth.pairs.blocked(pair, now); b {
		wait, by, key = d, "pair", "p"+pair
	}
	if b, d := s.auth.addresses.blocked(addr, now); b && d > wait {
		wait, by, key = d, "address", "a"+addr
	}
	if b, d := s.auth.accounts.blocked(account, now); b && d > wait && !s.auth.known.has(pair, now) {
		wait, by, key = d, "account", "u"+account
	}
	return wait, by, key
}

// auditThrottled records a login refused by a throttle, once per limit
// key and window: every refusal is accountable, but a flood of guesses
// cannot flood the append-only trail.
func (s *Server) auditThrottled(r *http.Request, name, addr, by, key string, now time.Time) {
	if s.auth.reported.has(key, now) {
		return
	}
	s.auth.reported.add(key, now)
	s.log.Warn("login throttled", "user", name, "addr", addr, "limit", by)
	l := store.LoginRefusal{Addr: addr, Outcome: "throttled", Limit: by}
	// As for a failed login, a name that is no account is not kept.
	if u, err := s.db.FindUserByName(r.Context(), name); err == nil {
		l.User = u
	}
	if err := s.db.RefuseLogin(r.Context(), l); err != nil {
		s.log.Error("audit throttled login", "err", err)
	}
}

// handleLogout ends the session on the server, so that a copied cookie is
// worthless too, and returns to the login page.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		if err := s.db.DeleteSession(r.Context(), c.Value); err != nil {
			s.internalError(w, r, err)
			return
		}
		// Its open gate screens stop receiving checks now, not at their
		// next recheck.
		s.events.endSession(sessionKey(c.Value))
	}
	clearSessionCookie(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// handleLang remembers the chosen language in this browser for a year and
// returns to the page the switch was on.
func (s *Server) handleLang(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginFormBytes)
	_ = r.ParseForm() // a broken form has no language: answered below
	lang, ok := i18n.Parse(r.PostForm.Get("lang"))
	if !ok {
		p := s.page(r, "lang.title")
		s.render(w, r, http.StatusUnprocessableEntity, view.Message(p, p.T.T("lang.unknown")))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: i18n.CookieName, Value: string(lang), Path: "/",
		MaxAge: 365 * 24 * 60 * 60, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	next := r.PostForm.Get("next")
	if next == "/login" || strings.HasPrefix(next, "/login?") {
		// safeNext refuses the login page as a destination after login;
		// here returning to it is right.
		if u, err := url.Parse(next); err == nil && u.Host == "" && u.Scheme == "" {
			dest := "/login"
			if u.RawQuery != "" {
				dest += "?" + u.RawQuery
			}
			http.Redirect(w, r, dest, http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, landing("", safeNext(next)), http.StatusSeeOther)
}
