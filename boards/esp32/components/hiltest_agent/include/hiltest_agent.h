/*
 * hiltest_agent.h - the hiltest firmware agent as an ESP-IDF component.
 *
 * hiltest_agent_start() runs the agent in its own task on the console
 * (UART or USB-Serial-JTAG, see menuconfig "hiltest agent"). It answers
 * protocol v1 frames (hiltest repository, protocol/PROTOCOL.md) and leaves
 * every other console byte alone, so your firmware's logs keep flowing.
 *
 * The protocol logic is the portable core in core/include/hil_core.h; this
 * header only starts it with the ESP-IDF platform hooks.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    /* Board name reported in HELLO; NULL = CONFIG_HILTEST_AGENT_BOARD_NAME. */
    const char *board_name;
    /* SAS dialect: "default", "azure-sdk-for-c" or "azure-iot-sdk-c";
     * NULL = the menuconfig choice. */
    const char *dialect;
    /* Let the agent own Wi-Fi (NET.WIFI). false when your firmware brings up
     * the network itself: the agent then does not announce net.wifi. */
    bool manage_wifi;
    /* Task stack in bytes and priority; 0 = the menuconfig values. */
    uint32_t task_stack;
    unsigned task_priority;
} hiltest_agent_config_t;

#define HILTEST_AGENT_CONFIG_DEFAULT() \
    { .board_name = NULL, .dialect = NULL, .manage_wifi = true, .task_stack = 0, .task_priority = 0 }

/* Starts the agent task. Call once, after nvs_flash_init() when the agent
 * manages Wi-Fi. Returns ESP_ERR_INVALID_STATE when already started,
 * ESP_ERR_INVALID_ARG for an unknown dialect. */
esp_err_t hiltest_agent_start(const hiltest_agent_config_t *config);

#ifdef __cplusplus
}
#endif
