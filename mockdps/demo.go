package mockdps

import "encoding/json"

// Demo enrollment values. The keys are fixed, public and for tests and the
// simulated bench only: never enroll them in a real DPS instance.
const (
	DemoIDScope = "0ne00DEMO01"

	DemoHub1 = "demo-hub-1.azure-devices.net"
	DemoHub2 = "demo-hub-2.azure-devices.net"

	// Individual enrollments.
	DemoDevice1             = "demo-device-1"
	DemoDevice1PrimaryKey   = "tZzaKRUvNxJR7zEptv5LvhGnurX66oMwCeERfwFfJGt1BvYg7gb2f67ASeBI2cGxBaDmn0f3V0n+Wq9AFfqD/Q=="
	DemoDevice1SecondaryKey = "5dwpNu8ZeXlUOV0nnXC5Hc9X3iG9GbbrImeZTU0nvcU4aemigm0mCoITvHa1lphGan/qTsT+fcSWnU1zzUkrEw=="
	// DemoDevice2 has initial data (returned as registrationState.payload)
	// and a device id different from its registration id.
	DemoDevice2             = "demo-device-2"
	DemoDevice2DeviceID     = "demo-device-2-twin"
	DemoDevice2PrimaryKey   = "UheE+9L4cQEThGnMzc+7UhifSKdeMTKvgluI3QBtArYKujBIWF3Hbg2+95SztNtx77HQxR8AyDLzebb4zNM7Nw=="
	DemoDevice2SecondaryKey = "FGkeZQvoyJZHkBpcR3snILTDTrTHhZ2pGY6Y/6gDuOvpMyUUj5L7s8itMu/4IvcyxKyNMLbrUF47Ln2vVmslVw=="
	DemoDevice2Payload      = `{"firmware":"1.2.3","site":"bench"}`
	// DemoDisabledDevice is an individual enrollment that is disabled.
	DemoDisabledDevice           = "demo-disabled"
	DemoDisabledDevicePrimaryKey = "eyY5v+XZjYRQE/1MP0YdQ2B9zit4B2GM4QHbU3+tuLqdA8ysKfQ4va7DJWVMPDEccuOz9kHo1MnH1tStG4l8bw=="

	// DemoGroup is an enabled symmetric-key group hashed over DemoHub1 and
	// DemoHub2: any valid registration id not individually enrolled can
	// register with the key derived from DemoGroupPrimaryKey.
	DemoGroup             = "demo-group"
	DemoGroupPrimaryKey   = "q9+Nuw6LinAPOnExjvpUKaecInDPxI7FWmDlw67a3s8zCl8WCNxxPPW0zwReB0aoRbc8b+ASzbHtGHWVT/vtqg=="
	DemoGroupSecondaryKey = "NeZvltdsbHbFyaVkHgoyik9AhxkFH+OYi1SqvllHPNC47BRkRjq4dwFazsDvG28Pq3kNWwd4NlfkBApdcJl9Ag=="
	// DemoDisabledGroup is a disabled group (static, DemoHub1).
	DemoDisabledGroup           = "demo-group-disabled"
	DemoDisabledGroupPrimaryKey = "oNlUQADlI0S0dn2ZKZdxb83ypAxeus5D0bqMsHqitmlPTtdRMdaq4LaXMtYlDD2XTSPf8ju/l6UUFvAzSCnoTQ=="
)

// DemoEnrollments returns a fresh, valid enrollment set built from the Demo*
// constants: one id scope, two enabled individual enrollments, a disabled
// one, an enabled group hashed over two hubs and a disabled group.
func DemoEnrollments() *Enrollments {
	return &Enrollments{
		IDScope: DemoIDScope,
		Individual: []IndividualEnrollment{
			{RegistrationID: DemoDevice1, PrimaryKey: DemoDevice1PrimaryKey, SecondaryKey: DemoDevice1SecondaryKey, AssignedHub: DemoHub1},
			{RegistrationID: DemoDevice2, PrimaryKey: DemoDevice2PrimaryKey, SecondaryKey: DemoDevice2SecondaryKey, AssignedHub: DemoHub2,
				DeviceID: DemoDevice2DeviceID, Payload: json.RawMessage(DemoDevice2Payload)},
			{RegistrationID: DemoDisabledDevice, PrimaryKey: DemoDisabledDevicePrimaryKey, AssignedHub: DemoHub1, Disabled: true},
		},
		Groups: []GroupEnrollment{
			{Name: DemoGroup, PrimaryKey: DemoGroupPrimaryKey, SecondaryKey: DemoGroupSecondaryKey,
				Hubs: []string{DemoHub1, DemoHub2}, Allocation: AllocationHashed},
			{Name: DemoDisabledGroup, PrimaryKey: DemoDisabledGroupPrimaryKey, Hubs: []string{DemoHub1},
				Allocation: AllocationStatic, Disabled: true},
		},
	}
}
