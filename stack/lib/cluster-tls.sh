# mTLS for the stack's Temporal cluster: certificates made with openssl (argument arrays, never a
# shell string), private keys 0600 in $CLUSTER_ROOT/tls, which is the owner's only. Two CAs, so that
# a certificate issued to a client can never pose as a cluster node:
#   ca           the frontend's server certificate and every client of the frontend: the engine,
#                the host agent, the admin CLI, and the server's own system workers
#   internode-ca history, matching and the frontend talking to each other (server and client at once)
# Nothing here is committed: every file is made on the machine by `up`, and `down` leaves it for the next up.
CLUSTER_TLS_DIR=$CLUSTER_ROOT/tls
# The name every certificate of a cluster node carries (besides IP 127.0.0.1), and clients check.
CLUSTER_TLS_SERVER_NAME=localhost
# Client certificates of the frontend, one per kind of caller: who called is in the certificate
# (CN=remediation-<name>), what an authorizer can tell apart.
CLUSTER_TLS_CLIENTS=(engine host-agent admin system-worker)
# Leaves are re-issued this long before they expire (and whenever they no longer match their CA or key).
CLUSTER_TLS_RENEW_SECONDS=$((30 * 86400))

cluster_tls_cert() { echo "$CLUSTER_TLS_DIR/$1.pem"; }
cluster_tls_key() { echo "$CLUSTER_TLS_DIR/$1-key.pem"; }

# A P-256 key, written 0600 from the first byte (umask), under a temporary name.
cluster_tls_new_key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1") 2>>"$LOG_DIR/temporal-setup.log"
}

# The certificate is still good: present, not expiring soon, for this key, and (a leaf) signed by this CA.
cluster_tls_valid() {
  local name=$1 ca=${2:-} cert key
  cert=$(cluster_tls_cert "$name"); key=$(cluster_tls_key "$name")
  [ -s "$cert" ] && [ -s "$key" ] || return 1
  openssl x509 -checkend "$CLUSTER_TLS_RENEW_SECONDS" -noout -in "$cert" >/dev/null 2>&1 || return 1
  [ "$(openssl x509 -pubkey -noout -in "$cert" 2>/dev/null)" = "$(openssl pkey -pubout -in "$key" 2>/dev/null)" ] || return 1
  [ -z "$ca" ] || openssl verify -CAfile "$(cluster_tls_cert "$ca")" "$cert" >/dev/null 2>&1
}

# cluster_tls_ca NAME CN: a self-signed CA that may sign leaves only (pathlen 0).
cluster_tls_ca() {
  local name=$1 cn=$2 cert key
  cluster_tls_valid "$name" && return 0
  cert=$(cluster_tls_cert "$name"); key=$(cluster_tls_key "$name")
  cluster_tls_new_key "$key.tmp" || die "openssl could not make the key of $name; see $LOG_DIR/temporal-setup.log"
  # -config /dev/null: only the extensions named here (the system's openssl.cnf would add its own).
  openssl req -x509 -new -config /dev/null -key "$key.tmp" -subj "/O=remediation stack/CN=$cn" -days 3650 -sha256 \
    -addext basicConstraints=critical,CA:TRUE,pathlen:0 -addext keyUsage=critical,keyCertSign,cRLSign \
    -addext subjectKeyIdentifier=hash -out "$cert.tmp" 2>>"$LOG_DIR/temporal-setup.log" \
    || die "openssl could not make the CA $name; see $LOG_DIR/temporal-setup.log"
  mv "$key.tmp" "$key" && mv "$cert.tmp" "$cert"
}

# cluster_tls_leaf NAME CA CN EKU [SAN]: a leaf the CA signs, for TLS servers (SAN) or clients.
cluster_tls_leaf() {
  local name=$1 ca=$2 cn=$3 eku=$4 san=${5:-} cert key
  cluster_tls_valid "$name" "$ca" && return 0
  cert=$(cluster_tls_cert "$name"); key=$(cluster_tls_key "$name")
  local ext=(-addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature
    -addext "extendedKeyUsage=$eku" -addext subjectKeyIdentifier=hash -addext authorityKeyIdentifier=keyid)
  [ -n "$san" ] && ext+=(-addext "subjectAltName=$san")
  cluster_tls_new_key "$key.tmp" || die "openssl could not make the key of $name; see $LOG_DIR/temporal-setup.log"
  openssl req -new -config /dev/null -key "$key.tmp" -subj "/O=remediation stack/CN=$cn" \
    -CA "$(cluster_tls_cert "$ca")" -CAkey "$(cluster_tls_key "$ca")" -days 365 -sha256 "${ext[@]}" \
    -out "$cert.tmp" 2>>"$LOG_DIR/temporal-setup.log" || die "openssl could not issue $name; see $LOG_DIR/temporal-setup.log"
  mv "$key.tmp" "$key" && mv "$cert.tmp" "$cert"
}

# Every certificate the cluster and its clients use; made once, renewed when due. Running services
# read the files again every refreshInterval (cluster_config), so a renewal needs no restart.
cluster_tls() {
  command -v openssl >/dev/null 2>&1 || ensure_packages openssl:openssl
  mkdir -p "$CLUSTER_TLS_DIR" "$LOG_DIR" && chmod 700 "$CLUSTER_TLS_DIR"
  # Two ups at once (a test script and a person) issue each certificate once.
  local lock
  exec {lock}>"$CLUSTER_TLS_DIR/.lock"
  flock "$lock"
  local san="IP:127.0.0.1,DNS:$CLUSTER_TLS_SERVER_NAME" client
  cluster_tls_ca ca "remediation stack Temporal CA"
  cluster_tls_ca internode-ca "remediation stack Temporal internode CA"
  cluster_tls_leaf frontend ca "temporal-frontend" serverAuth "$san"
  cluster_tls_leaf internode internode-ca "temporal-internode" serverAuth,clientAuth "$san"
  for client in "${CLUSTER_TLS_CLIENTS[@]}"; do
    cluster_tls_leaf "$client" ca "remediation-$client" clientAuth
  done
  exec {lock}>&-
  # Keys the owner's only (made so; said again for files an older up left); certificates are public.
  chmod 600 "$CLUSTER_TLS_DIR"/*-key.pem
  local pem; for pem in "$CLUSTER_TLS_DIR"/*.pem; do case $pem in *-key.pem) ;; *) chmod 644 "$pem" ;; esac; done
}

# The Temporal CLI as the stack's administrator: the admin client certificate, the cluster's CA.
cluster_temporal() {
  "$(temporal_bin)" "$@" --address "$(cluster_address)" --tls-ca-path "$(cluster_tls_cert ca)" \
    --tls-cert-path "$(cluster_tls_cert admin)" --tls-key-path "$(cluster_tls_key admin)" --tls-server-name "$CLUSTER_TLS_SERVER_NAME"
}

# grpc-health-probe of one service: the frontend as the admin client, history and matching as a node.
cluster_probe() {
  local svc=$1 name=$2 identity=admin ca=ca
  [ "$svc" = frontend ] || { identity=internode; ca=internode-ca; }
  "$(cluster_bin grpc-health-probe)" -addr "127.0.0.1:$(cluster_grpc_port "$svc")" -service "temporal.api.workflowservice.v1.$name" \
    -connect-timeout 1s -rpc-timeout 1s -tls -tls-ca-cert "$(cluster_tls_cert "$ca")" -tls-client-cert "$(cluster_tls_cert "$identity")" \
    -tls-client-key "$(cluster_tls_key "$identity")" -tls-server-name "$CLUSTER_TLS_SERVER_NAME"
}

# stack.env's lines for the cluster's TLS: the CA, the server name, a certificate and key per client.
cluster_tls_env() {
  echo "TEMPORAL_CLUSTER_TLS_CA=$(cluster_tls_cert ca)"
  echo "TEMPORAL_CLUSTER_TLS_SERVER_NAME=$CLUSTER_TLS_SERVER_NAME"
  local client var
  for client in engine host-agent admin; do
    var=$(tr 'a-z-' 'A-Z_' <<<"$client")
    echo "TEMPORAL_CLUSTER_TLS_${var}_CERT=$(cluster_tls_cert "$client")"
    echo "TEMPORAL_CLUSTER_TLS_${var}_KEY=$(cluster_tls_key "$client")"
  done
}
