package rfc2217

// Telnet protocol bytes (RFC 854) and options used by RFC 2217.
const (
	iac  = 0xFF // interpret as command
	dont = 0xFE
	do   = 0xFD
	wont = 0xFC
	will = 0xFB
	sb   = 0xFA // subnegotiation begin
	se   = 0xF0 // subnegotiation end

	optBinary  = 0  // RFC 856
	optEcho    = 1  // RFC 857
	optSGA     = 3  // RFC 858, suppress go-ahead
	optComPort = 44 // RFC 2217 COM-PORT-OPTION
)

// RFC 2217 client-to-server command codes; the server answers with code+100.
const (
	cmdSignature      = 0
	cmdSetBaudRate    = 1
	cmdSetDataSize    = 2
	cmdSetParity      = 3
	cmdSetStopSize    = 4
	cmdSetControl     = 5
	cmdNotifyLine     = 6
	cmdNotifyModem    = 7
	cmdSetModemMask   = 11
	cmdPurgeData      = 12
	serverCodeOffset  = 100
	maxSubnegotiation = 512 // longer subnegotiations are truncated (only SIGNATURE can be long)
)

// SET-CONTROL values (RFC 2217 section "SET-CONTROL").
const (
	ctlBreakOn  = 5
	ctlBreakOff = 6
	ctlDTROn    = 8
	ctlDTROff   = 9
	ctlRTSOn    = 11
	ctlRTSOff   = 12
)

// PURGE-DATA values.
const (
	purgeRx = 1
	purgeTx = 2
)

// NOTIFY-MODEMSTATE bits (RFC 2217).
const (
	modemCTS = 0x10
	modemDSR = 0x20
	modemRI  = 0x40
	modemDCD = 0x80
)

type parseState uint8

const (
	stData  parseState = iota
	stIAC              // saw IAC in data
	stOpt              // saw IAC WILL/WONT/DO/DONT, waiting for the option byte
	stSB               // inside IAC SB ... collecting
	stSBIAC            // saw IAC inside a subnegotiation
)

// parser is the telnet receive state machine. It keeps its state across
// calls to feed, so commands split over several TCP reads are handled.
type parser struct {
	state parseState
	verb  byte
	sub   []byte
	// onCommand is called for IAC WILL/WONT/DO/DONT <opt>.
	onCommand func(verb, opt byte)
	// onSub is called with the bytes between IAC SB and IAC SE (IAC IAC
	// already collapsed); the slice is only valid during the call.
	onSub func(data []byte)
}

// feed parses in and appends the data bytes (negotiation stripped, IAC IAC
// turned into one 0xFF) to out.
func (ps *parser) feed(in, out []byte) []byte {
	for _, b := range in {
		switch ps.state {
		case stData:
			if b == iac {
				ps.state = stIAC
			} else {
				out = append(out, b)
			}
		case stIAC:
			switch b {
			case iac:
				out = append(out, iac)
				ps.state = stData
			case will, wont, do, dont:
				ps.verb = b
				ps.state = stOpt
			case sb:
				ps.sub = ps.sub[:0]
				ps.state = stSB
			default: // NOP, GA, DM, BRK, AYT, ... carry no data for us
				ps.state = stData
			}
		case stOpt:
			if ps.onCommand != nil {
				ps.onCommand(ps.verb, b)
			}
			ps.state = stData
		case stSB:
			if b == iac {
				ps.state = stSBIAC
			} else if len(ps.sub) < maxSubnegotiation {
				ps.sub = append(ps.sub, b)
			}
		case stSBIAC:
			switch b {
			case se:
				if ps.onSub != nil {
					ps.onSub(ps.sub)
				}
				ps.state = stData
			case iac:
				if len(ps.sub) < maxSubnegotiation {
					ps.sub = append(ps.sub, iac)
				}
				ps.state = stSB
			default:
				// Protocol violation (IAC x inside SB): RFC 854 leaves it
				// undefined; drop the subnegotiation and resume data.
				ps.state = stData
			}
		}
	}
	return out
}

// escape appends data to dst with every 0xFF doubled (RFC 854 IAC escaping).
func escape(dst, data []byte) []byte {
	for _, b := range data {
		if b == iac {
			dst = append(dst, iac, iac)
		} else {
			dst = append(dst, b)
		}
	}
	return dst
}

// unescapedLen returns how many bytes of data are fully represented by the
// first n bytes of escape(nil, data).
func unescapedLen(data []byte, n int) int {
	used := 0
	for i, b := range data {
		w := 1
		if b == iac {
			w = 2
		}
		if used+w > n {
			return i
		}
		used += w
	}
	return len(data)
}

// subnegotiation builds IAC SB COM-PORT-OPTION cmd value... IAC SE.
func subnegotiation(cmd byte, value ...byte) []byte {
	b := []byte{iac, sb, optComPort, cmd}
	b = escape(b, value)
	return append(b, iac, se)
}

// optState is the RFC 1143 state of one side of one option (without the
// WANTNO states: this client never disables an option it agreed to).
type optState uint8

const (
	optNo optState = iota
	optYes
	optWantYes // we asked, no answer yet
)

// supported reports whether the client agrees to enable opt (either side).
func supported(opt byte) bool {
	return opt == optBinary || opt == optSGA || opt == optComPort
}
