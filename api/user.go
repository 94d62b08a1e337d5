package api

import "time"

// User is someone who may call the API. Tokens are stored only as hashes.
type User struct {
	Name        string    `json:"name"`
	Role        string    `json:"role"`
	CreatedAt   time.Time `json:"created_at"`
	CreateIndex uint64    `json:"create_index"`
}

// UserCreated is the answer to creating a user: the token is shown this once.
type UserCreated struct {
	User  User   `json:"user"`
	Token string `json:"token"`
}

// Whoami describes the caller.
type Whoami struct {
	Name string `json:"name"`
	Role string `json:"role"`
}
