package mockdps

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// indivEntry is an individual enrollment with its keys decoded once.
type indivEntry struct {
	e        IndividualEnrollment
	keys     [][]byte // decoded primary, secondary
	keyTexts []string // base64 texts, same order
}

// groupEntry is a group with its keys decoded once.
type groupEntry struct {
	g        GroupEnrollment
	idx      int
	keys     [][]byte
	keyTexts []string
}

// enrollIndex is the read-only lookup structure built from Enrollments, plus
// a cache of derived device keys.
type enrollIndex struct {
	scope  string
	indiv  map[string]*indivEntry // by lowercased registration id
	groups []*groupEntry

	derived  sync.Map // groupIdx "\x00" registrationId -> [][]byte
	derivedN atomic.Int64
}

// maxDerivedCache bounds the derived-key cache (random registration ids
// from a fuzzer or a scanner must not grow it forever).
const maxDerivedCache = 200000

func indexEnrollments(e *Enrollments) (*enrollIndex, error) {
	x := &enrollIndex{scope: e.IDScope, indiv: make(map[string]*indivEntry, len(e.Individual))}
	dec := func(texts ...string) ([][]byte, []string, error) {
		var keys [][]byte
		var ts []string
		for _, t := range texts {
			if t == "" {
				continue
			}
			k, err := base64.StdEncoding.DecodeString(t)
			if err != nil {
				return nil, nil, err
			}
			keys, ts = append(keys, k), append(ts, t)
		}
		return keys, ts, nil
	}
	for _, ie := range e.Individual {
		keys, ts, err := dec(ie.PrimaryKey, ie.SecondaryKey)
		if err != nil {
			return nil, fmt.Errorf("individual %q: %w", ie.RegistrationID, err)
		}
		x.indiv[strings.ToLower(ie.RegistrationID)] = &indivEntry{e: ie, keys: keys, keyTexts: ts}
	}
	for i, g := range e.Groups {
		keys, ts, err := dec(g.PrimaryKey, g.SecondaryKey)
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", g.Name, err)
		}
		x.groups = append(x.groups, &groupEntry{g: g, idx: i, keys: keys, keyTexts: ts})
	}
	return x, nil
}

// derivedKeys returns the decoded device keys of registrationID in group g
// (HMAC-SHA256 keyed with each decoded group key over the registration id,
// MicrosoftDocs/azure-docs articles/iot-dps/how-to-legacy-device-symm-key.md),
// cached.
func (x *enrollIndex) derivedKeys(g *groupEntry, registrationID string) [][]byte {
	ck := strconv.Itoa(g.idx) + "\x00" + registrationID
	if v, ok := x.derived.Load(ck); ok {
		return v.([][]byte)
	}
	out := make([][]byte, len(g.keys))
	for i, k := range g.keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(registrationID))
		out[i] = m.Sum(nil)
	}
	if x.derivedN.Load() < maxDerivedCache {
		if _, loaded := x.derived.LoadOrStore(ck, out); !loaded {
			x.derivedN.Add(1)
		}
	}
	return out
}

// principal is the enrollment a request authenticated as.
type principal struct {
	indiv *indivEntry
	group *groupEntry
}

func (p principal) disabled() bool {
	if p.indiv != nil {
		return p.indiv.e.Disabled
	}
	return p.group != nil && p.group.g.Disabled
}

func (p principal) describe() string {
	if p.indiv != nil {
		return fmt.Sprintf("individual enrollment %q", p.indiv.e.RegistrationID)
	}
	if p.group != nil {
		return fmt.Sprintf("enrollment group %q", p.group.g.Name)
	}
	return "no enrollment"
}

// assignment computes hub and device id.
func (p principal) assignment(registrationID string) (hub, deviceID string, payload json.RawMessage) {
	if p.indiv != nil {
		d := p.indiv.e.DeviceID
		if d == "" {
			d = registrationID
		}
		return p.indiv.e.AssignedHub, d, p.indiv.e.Payload
	}
	g := p.group.g
	hub = g.Hubs[0]
	if g.Allocation != AllocationStatic && len(g.Hubs) > 1 {
		// Evenly weighted distribution: a stable hash of the (case-folded)
		// registration id. DPS does not document its hash; any stable
		// spread is faithful to "hashed".
		h := fnv.New32a()
		h.Write([]byte(strings.ToLower(registrationID)))
		hub = g.Hubs[h.Sum32()%uint32(len(g.Hubs))]
	}
	return hub, registrationID, g.Payload
}

// registry holds the per-device registration state in sharded maps so that
// concurrent devices do not contend on one mutex.
type registry struct {
	shards [64]regShard
	prefix string // operation id prefix, per server instance
}

type regShard struct {
	mu sync.Mutex
	m  map[string]*device
}

type device struct {
	mu       sync.Mutex
	regID    string
	created  time.Time
	hub      string // last assigned hub, "" = never assigned
	ops      map[string]*operation
	opOrder  []string
	last     *operation // latest operation
	lastDone *registrationState
}

// maxOpsPerDevice bounds the operations remembered per device (the oldest
// is forgotten first, and polling it answers 404). Boards on one bench that
// share an individual enrollment register its id at the same time, each
// polling its own operation afterwards: the bound must exceed the number of
// such registrations in flight, or a board's operation is forgotten before
// its first poll.
const maxOpsPerDevice = 256

type operation struct {
	id         string
	start      time.Time
	apiVersion string
	who        principal
	done       bool
	status     string
	state      *registrationState
}

func newRegistry() *registry {
	r := &registry{prefix: fmt.Sprintf("5.%016x", rand.Uint64())}
	for i := range r.shards {
		r.shards[i].m = map[string]*device{}
	}
	return r
}

func (r *registry) shard(key string) *regShard {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &r.shards[h.Sum32()%uint32(len(r.shards))]
}

// get returns the device for registrationID, creating it when create is set.
func (r *registry) get(registrationID string, create bool) *device {
	key := strings.ToLower(registrationID)
	sh := r.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	d := sh.m[key]
	if d == nil && create {
		d = &device{regID: registrationID, ops: map[string]*operation{}}
		sh.m[key] = d
	}
	return d
}

// newOperation starts an operation for the device.
func (r *registry) newOperation(d *device, now time.Time, apiVersion string, who principal) *operation {
	op := &operation{id: r.prefix + "." + newUUID(), start: now, apiVersion: apiVersion, who: who, status: "assigning"}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ops[op.id] = op
	d.opOrder = append(d.opOrder, op.id)
	if len(d.opOrder) > maxOpsPerDevice {
		delete(d.ops, d.opOrder[0])
		d.opOrder = d.opOrder[1:]
	}
	d.last = op
	return op
}

// registrationState is DeviceRegistrationResult (Azure/azure-rest-api-specs
// .../stable/2021-10-01/device.json), field order as in the service's
// responses quoted in Azure/azure-sdk-for-c az_iot_provisioning_client.c.
type registrationState struct {
	SymmetricKey       *symmetricKeyInfo `json:"symmetricKey,omitempty"`
	RegistrationID     string            `json:"registrationId"`
	CreatedDateTimeUTC string            `json:"createdDateTimeUtc,omitempty"`
	AssignedHub        string            `json:"assignedHub,omitempty"`
	DeviceID           string            `json:"deviceId,omitempty"`
	Status             string            `json:"status"`
	Substatus          string            `json:"substatus,omitempty"`
	ErrorCode          int               `json:"errorCode,omitempty"`
	ErrorMessage       string            `json:"errorMessage,omitempty"`
	LastUpdated        string            `json:"lastUpdatedDateTimeUtc,omitempty"`
	ETag               string            `json:"etag,omitempty"`
	Payload            json.RawMessage   `json:"payload,omitempty"`
}

type symmetricKeyInfo struct {
	EnrollmentGroupID string `json:"enrollmentGroupId,omitempty"`
}

// operationStatus is RegistrationOperationStatus.
type operationStatus struct {
	OperationID       string             `json:"operationId"`
	Status            string             `json:"status"`
	RegistrationState *registrationState `json:"registrationState,omitempty"`
}

// Substatus values (AssignedDeviceSubstatus in device.json).
const (
	SubstatusInitialAssignment                = "initialAssignment"
	SubstatusDeviceDataMigrated               = "deviceDataMigrated"
	SubstatusDeviceDataReset                  = "deviceDataReset"
	SubstatusReprovisionedToInitialAssignment = "reprovisionedToInitialAssignment"
)

// finish completes the operation when its assignment delay has passed and
// returns whether it is done. The substatus follows the service:
// initialAssignment the first time; on re-registration to the same hub
// reprovisionedToInitialAssignment from api-version 2019-04-15 on, and
// initialAssignment before it (Azure/azure-iot-sdk-csharp
// provisioning/device/src/ProvisioningRegistrationSubstatus.cs remarks);
// to another hub deviceDataMigrated, the result of the default reprovision
// policy "re-provision and migrate data".
func (d *device) finish(op *operation, now time.Time, delay time.Duration) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if op.done {
		return true
	}
	if now.Sub(op.start) < delay {
		return false
	}
	op.done = true
	st := &registrationState{RegistrationID: d.regID, LastUpdated: azureTime(now), ETag: newETag()}
	if op.who.group != nil {
		st.SymmetricKey = &symmetricKeyInfo{EnrollmentGroupID: op.who.group.g.Name}
	}
	if op.who.disabled() {
		op.status = "disabled"
		st.Status = "disabled"
		if !d.created.IsZero() {
			st.CreatedDateTimeUTC = azureTime(d.created)
		}
		op.state = st
		d.lastDone = st
		return true
	}
	hub, devID, payload := op.who.assignment(d.regID)
	switch {
	case d.hub == "":
		st.Substatus = SubstatusInitialAssignment
	case d.hub != hub:
		st.Substatus = SubstatusDeviceDataMigrated
	case op.apiVersion < "2019-04-15":
		st.Substatus = SubstatusInitialAssignment
	default:
		st.Substatus = SubstatusReprovisionedToInitialAssignment
	}
	if d.created.IsZero() {
		d.created = now
	}
	d.hub = hub
	st.CreatedDateTimeUTC = azureTime(d.created)
	st.AssignedHub, st.DeviceID, st.Payload = hub, devID, payload
	st.Status = "assigned"
	op.status = "assigned"
	op.state = st
	d.lastDone = st
	return true
}

// azureTime formats like the service: 7 fractional digits, Z.
func azureTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// newUUID returns a random (version 4 layout) UUID string. math/rand/v2 is
// enough: ids need to be unique, not secret.
func newUUID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	out := make([]byte, 36)
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hexd[c>>4], hexd[c&0xf]
		j += 2
	}
	return string(out)
}

// newETag mimics the service's etags: base64 of a quoted GUID-like string.
func newETag() string {
	return base64.StdEncoding.EncodeToString([]byte(`"` + newUUID() + `"`))
}
