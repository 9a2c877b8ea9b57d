package config

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// readSecrets moves the contents of client_secret_file, nats.password_file and
// nats.token_file into ClientSecret, NATS.Password and NATS.Token.
func (d *decoder) readSecrets(c *Config) {
	for i := range c.Accounts {
		a := &c.Accounts[i]
		p := accountPath(i)
		if a.ClientSecretFile == "" {
			continue
		}
		if a.ClientSecret != "" {
			d.at(p+".client_secret_file", "both client_secret and client_secret_file are set",
				"keep one: client_secret (usually as ${ENV}) or client_secret_file")
			continue
		}
		a.ClientSecret = d.readSecretFile(a.ClientSecretFile, p+".client_secret_file",
			"write the secret's Value (Entra admin center > App registrations > your app > Certificates & secrets) into that file")
	}
	n := &c.NATS
	if n.PasswordFile != "" {
		if n.Password != "" {
			d.at("nats.password_file", "both password and password_file are set", "keep one of them")
		} else {
			n.Password = d.readSecretFile(n.PasswordFile, "nats.password_file", "write the NATS user's password into that file")
		}
	}
	if n.TokenFile != "" {
		if n.Token != "" {
			d.at("nats.token_file", "both token and token_file are set", "keep one of them")
		} else {
			n.Token = d.readSecretFile(n.TokenFile, "nats.token_file", "write the NATS server's auth token into that file")
		}
	}
}

// readSecretFile returns the file's content without trailing line breaks.
// Its messages name the file, never its content.
func (d *decoder) readSecretFile(path, key, fix string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		d.at(key, fileProblem(path, err), fix)
		return ""
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s != "" {
		d.secrets = append(d.secrets, s)
	}
	if strings.TrimSpace(s) == "" {
		d.at(key, "file "+path+" is empty", fix)
	}
	return s
}

// fileProblem describes why a file named in the config cannot be used.
func fileProblem(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "file " + path + " does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "file " + path + " is not readable by this user"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "file " + path + ": " + pe.Err.Error()
	}
	return "file " + path + ": " + err.Error()
}
