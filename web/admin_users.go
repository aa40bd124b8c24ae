package web

import (
	"crypto/rand"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// Password rules for accounts made or reset here. Ten characters is the
// floor a staff member can still type on a tablet; the ceiling is what
// the store agrees to hash.
const (
	minPasswordChars = 10
	maxPasswordBytes = 1024
	// generatedPasswordLen characters from passwordAlphabet carry about 80
	// bits: beyond guessing even without the login throttle.
	generatedPasswordLen = 14
	// passwordAlphabet leaves out characters people misread when a
	// password is read aloud or copied from a screen: 0 O o 1 l I.
	passwordAlphabet = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
)

// usersNotices are the confirmations a redirect back to the accounts page
// may ask for, by the "done" query value.
var usersNotices = map[string]string{
	"created":  "admin.users.created",
	"disabled": "admin.users.disabled_ok",
	"enabled":  "admin.users.enabled_ok",
	"password": "admin.users.password_ok",
}

// handleUsers lists the accounts with the form for a new one.
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	s.renderUsers(w, r, http.StatusOK, view.AdminUsers{})
}

// usersNotice is the confirmation a redirect back to the accounts page
// asks for. It names an account from the URL, so it is shown only when
// that account exists and, for a role change, has that role: a crafted
// link cannot make the page claim what did not happen.
func usersNotice(r *http.Request, users []*store.User) string {
	q := r.URL.Query()
	done, name, role := q.Get("done"), q.Get("name"), q.Get("role")
	t := i18n.FromRequest(r)
	for _, u := range users {
		if u.Username != name {
			continue
		}
		switch key, ok := usersNotices[done]; {
		case ok && (done != "disabled" || !u.DisabledAt.IsZero()) && (done != "enabled" || u.DisabledAt.IsZero()):
			return t.T(key, u.Username)
		case done == "role" && role == string(u.Role):
			return t.T("admin.users.role_ok", u.Username, t.T("role."+string(u.Role)))
		}
	}
	return ""
}

// renderUsers completes m with the account list and renders the page.
func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, status int, m view.AdminUsers) {
	users, err := s.db.FindUsers(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if r.Method == http.MethodGet && m.Notice == "" {
		m.Notice = usersNotice(r, users)
	}
	me := userFrom(r.Context())
	for _, u := range users {
		m.Users = append(m.Users, view.AdminUserRow{
			ID: u.ID, Username: u.Username, Role: string(u.Role), Created: u.CreatedAt,
			Disabled: !u.DisabledAt.IsZero(), Self: me != nil && me.ID == u.ID,
		})
	}
	for _, role := range store.UserRoles() {
		m.Roles = append(m.Roles, string(role))
	}
	m.MinPassword = minPasswordChars
	if m.Form.Role == "" {
		m.Form.Role = string(store.UserStaff)
	}
	s.render(w, r, status, view.AdminUsersPage(s.adminPage(r, "admin.users"), m))
}

// checkPassword returns the message key and argument for a password that
// breaks the rules, or "" for a good one.
func checkPassword(pw string) (string, int) {
	switch {
	case utf8.RuneCountInString(pw) < minPasswordChars:
		return "admin.users.err.password_short", minPasswordChars
	case len(pw) > maxPasswordBytes:
		return "admin.users.err.password_long", maxPasswordBytes
	}
	return "", 0
}

// handleCreateUser creates an account. Bad input comes back as the form
// with a message on each bad field; a taken name is one of them.
func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	t := i18n.FromRequest(r)
	f := view.UserForm{
		Username: strings.TrimSpace(r.PostForm.Get("username")),
		Role:     r.PostForm.Get("role"),
		Errors:   view.FieldErrors{},
	}
	pw := r.PostForm.Get("password")
	if f.Username == "" {
		f.Errors["username"] = t.T("admin.users.err.username_required")
	}
	if !store.ValidRole(store.UserRole(f.Role)) {
		f.Errors["role"] = t.T("admin.users.err.role")
	}
	if key, arg := checkPassword(pw); key != "" {
		f.Errors["password"] = t.T(key, arg)
	}
	if len(f.Errors) == 0 {
		hash, err := store.HashPassword(pw)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		u := &store.User{Username: f.Username, Role: store.UserRole(f.Role), PasswordHash: hash}
		err = s.db.CreateUser(r.Context(), u, actorOf(r))
		switch {
		case errors.Is(err, store.ErrConflict):
			f.Errors["username"] = t.T("admin.users.err.username_taken")
		case errors.Is(err, store.ErrInvalid):
			// Role and hash were checked above: the name is what is wrong.
			f.Errors["username"] = t.T("admin.users.err.username_invalid", maxAccountName, maxAccountName/3)
		case err != nil:
			s.internalError(w, r, err)
			return
		default:
			s.log.Info("user created", "user", u.Username, "role", u.Role, "by", actorOf(r))
			redirectUsers(w, r, "created", u.Username, "")
			return
		}
	}
	s.renderUsers(w, r, http.StatusUnprocessableEntity, view.AdminUsers{Form: f, Error: t.T("error.form_invalid")})
}

// redirectUsers sends the browser back to the accounts page with a
// confirmation (post/redirect/get, so a reload repeats nothing).
func redirectUsers(w http.ResponseWriter, r *http.Request, done, name, role string) {
	q := url.Values{"done": {done}, "name": {name}}
	if role != "" {
		q.Set("role", role)
	}
	http.Redirect(w, r, "/admin/users?"+q.Encode(), http.StatusSeeOther)
}

// targetUser loads the account named by the path's {id}. On failure it
// answers itself and returns nil.
func (s *Server) targetUser(w http.ResponseWriter, r *http.Request) *store.User {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		err = store.ErrNotFound // not a number: no such account either
	} else {
		var u *store.User
		if u, err = s.db.FindUserByID(r.Context(), id); err == nil {
			return u
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		s.renderUsers(w, r, http.StatusNotFound, view.AdminUsers{Error: i18n.FromRequest(r).T("admin.users.err.not_found")})
		return nil
	}
	s.internalError(w, r, err)
	return nil
}

// rowError re-renders the accounts page with a message on one row.
func (s *Server) rowError(w http.ResponseWriter, r *http.Request, status int, u *store.User, field, msg string) {
	s.renderUsers(w, r, status, view.AdminUsers{
		Error:     msg,
		RowErrors: map[int64]view.FieldErrors{u.ID: {field: msg}},
	})
}

// handleDisableUser disables an account and ends its sessions. An admin
// cannot disable their own account (a slip of the finger would lock them
// out), and the store refuses to disable the last enabled admin.
func (s *Server) handleDisableUser(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	u := s.targetUser(w, r)
	if u == nil {
		return
	}
	t := i18n.FromRequest(r)
	if me := userFrom(r.Context()); me != nil && me.ID == u.ID {
		s.rowError(w, r, http.StatusUnprocessableEntity, u, "state", t.T("admin.users.err.self_disable"))
		return
	}
	err := s.db.DisableUser(r.Context(), u.ID, actorOf(r))
	if errors.Is(err, store.ErrLastAdmin) {
		s.rowError(w, r, http.StatusUnprocessableEntity, u, "state", t.T("admin.users.err.last_admin"))
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.Info("user disabled", "user", u.Username, "by", actorOf(r))
	s.events.endUser(u.ID) // its open gate screens too, not only its sessions
	redirectUsers(w, r, "disabled", u.Username, "")
}

// handleEnableUser lets a disabled account log in again.
func (s *Server) handleEnableUser(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	u := s.targetUser(w, r)
	if u == nil {
		return
	}
	if err := s.db.EnableUser(r.Context(), u.ID, actorOf(r)); err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.Info("user enabled", "user", u.Username, "by", actorOf(r))
	redirectUsers(w, r, "enabled", u.Username, "")
}

// handleUserRole changes an account's role; the store keeps at least one
// enabled admin. An admin who gives up their own admin role is sent to
// the start page, since the accounts page is no longer theirs.
func (s *Server) handleUserRole(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	u := s.targetUser(w, r)
	if u == nil {
		return
	}
	t := i18n.FromRequest(r)
	role := store.UserRole(r.PostForm.Get("role"))
	if !store.ValidRole(role) {
		s.rowError(w, r, http.StatusUnprocessableEntity, u, "role", t.T("admin.users.err.role"))
		return
	}
	err := s.db.UpdateUserRole(r.Context(), u.ID, role, actorOf(r))
	if errors.Is(err, store.ErrLastAdmin) {
		s.rowError(w, r, http.StatusUnprocessableEntity, u, "role", t.T("admin.users.err.last_admin"))
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.Info("user role changed", "user", u.Username, "role", role, "by", actorOf(r))
	if me := userFrom(r.Context()); me != nil && me.ID == u.ID && role != store.UserAdmin {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	redirectUsers(w, r, "role", u.Username, string(role))
}

// handleResetPassword sets a new password and ends the account's
// sessions. The admin either types the password or leaves the field empty
// for a generated one, which is shown in this response only: it is never
// stored in clear or put in a URL.
func (s *Server) handleResetPassword(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, maxAdminForm) {
		return
	}
	u := s.targetUser(w, r)
	if u == nil {
		return
	}
	t := i18n.FromRequest(r)
	pw := r.PostForm.Get("password")
	generated := pw == ""
	if generated {
		var err error
		if pw, err = generatePassword(); err != nil {
			s.internalError(w, r, err)
			return
		}
	} else if key, arg := checkPassword(pw); key != "" {
		s.rowError(w, r, http.StatusUnprocessableEntity, u, "password", t.T(key, arg))
		return
	}
	hash, err := store.HashPassword(pw)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if err := s.db.SetPassword(r.Context(), u.ID, hash, actorOf(r), generated); err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.Info("user password reset", "user", u.Username, "by", actorOf(r))
	s.events.endUser(u.ID) // its open gate screens too, not only its sessions
	if !generated {
		redirectUsers(w, r, "password", u.Username, "")
		return
	}
	s.renderUsers(w, r, http.StatusOK, view.AdminUsers{
		Notice: t.T("admin.users.password_ok", u.Username),
		Secret: &view.ShownSecret{Name: u.Username, Secret: pw},
	})
}

// generatePassword returns a random password to hand over in person.
func generatePassword() (string, error) {
	b := make([]byte, generatedPasswordLen)
	n := big.NewInt(int64(len(passwordAlphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		b[i] = passwordAlphabet[k.Int64()]
	}
	return string(b), nil
}
