# The web console's files and the C++ file that embeds them (embed.cmake), for every build
# that links http/routes.cpp (the service, and tests/fuzz): sets CONSOLE_ASSETS_CPP. uPlot
# comes from npm at its locked version (scripts/setup runs `npm ci` in http/console).
set(console_dir ${CMAKE_CURRENT_LIST_DIR})
set(console_files
  ${console_dir}/index.html
  ${console_dir}/console.js
  ${console_dir}/console.css
  ${console_dir}/favicon.svg
  ${console_dir}/node_modules/uplot/dist/uPlot.iife.min.js
  ${console_dir}/node_modules/uplot/dist/uPlot.min.css)
if(NOT EXISTS ${console_dir}/node_modules/uplot/dist/uPlot.iife.min.js)
  message(FATAL_ERROR "http/console/node_modules is missing: run scripts/setup (it runs npm ci there)")
endif()
set(CONSOLE_ASSETS_CPP ${CMAKE_CURRENT_BINARY_DIR}/console_assets_data.cpp)
add_custom_command(
  OUTPUT ${CONSOLE_ASSETS_CPP}
  COMMAND ${CMAKE_COMMAND} "-DFILES=${console_files}" -DOUT=${CONSOLE_ASSETS_CPP} -P ${console_dir}/embed.cmake
  DEPENDS ${console_files} ${console_dir}/embed.cmake
  COMMENT "Embedding the web console"
  VERBATIM)
