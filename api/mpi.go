package api

// AttemptSSH is what the nodes of a multi-node attempt need to start
// commands on each other over SSH: the run's key pair and every node's SSH
// endpoint with its host key, pinned from the node's registration. The
// head sends it only to the attempt's own nodes, in their assignments.
type AttemptSSH struct {
	// User is the SSH user name agents accept the key under: the run's ID.
	User string `json:"user"`
	// PrivateKey is the run's private key (PEM, OpenSSH format). A secret:
	// never logged or shown.
	PrivateKey string `json:"private_key"`
	// PublicKey is its public half (authorized_keys format).
	PublicKey string `json:"public_key"`
	// Peers are the attempt's nodes in rank order.
	Peers []SSHPeer `json:"peers"`
}

// SSHPeer is one node of an attempt as its peers reach it over SSH.
type SSHPeer struct {
	NodeID string `json:"node_id"`
	// Host is the node's address (Node.Address, without a port).
	Host string `json:"host"`
	// Port is the node's SSH port (0: the node's agent serves no SSH).
	Port int `json:"port"`
	// HostKey is the node's SSH host key (authorized_keys format).
	HostKey string `json:"host_key"`
}
