/*
 * main.c - the stand-alone hiltest agent firmware: NVS (needed by Wi-Fi),
 * then the agent task. Your own firmware embeds the component the same way.
 */
#include "esp_log.h"
#include "nvs_flash.h"

#include "hiltest_agent.h"

void app_main(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);

    hiltest_agent_config_t cfg = HILTEST_AGENT_CONFIG_DEFAULT();
    ESP_ERROR_CHECK(hiltest_agent_start(&cfg));
}
