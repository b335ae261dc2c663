//! GB/T 26875.3-2011 code tables: names for system, component and analog types.
//!
//! Names are the standard's Chinese terms, which is what command-center staff read.

/// The name of a building fire-facility system type.
pub fn system_type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "通用",
        1 => "火灾报警系统",
        10 => "消防联动控制器",
        11 => "消火栓系统",
        12 => "自动喷水灭火系统",
        13 => "气体灭火系统",
        14 => "水喷雾灭火系统(泵启动方式)",
        15 => "水喷雾灭火系统(压力容器启动方式)",
        16 => "泡沫灭火系统",
        17 => "干粉灭火系统",
        18 => "防烟排烟系统",
        19 => "防火门及卷帘系统",
        20 => "消防电梯",
        21 => "消防应急广播",
        22 => "消防应急照明和疏散指示系统",
        23 => "消防电源",
        24 => "消防电话",
        _ => return None,
    })
}

/// The name of a component type.
pub fn component_type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "通用",
        1 => "火灾报警控制器",
        10..=13 => "可燃气体探测器",
        16 => "电气火灾监控报警器",
        17 => "剩余电流式电气火灾监控探测器",
        18 => "测温式电气火灾监控探测器",
        21 => "探测回路",
        22 => "火灾显示盘",
        23 => "手动火灾报警按钮",
        24 => "消火栓按钮",
        25 => "火灾探测器",
        30..=37 => "感温火灾探测器",
        40 | 41 | 43 | 44 => "感烟火灾探测器",
        42 => "点型光电感烟火灾探测器",
        50..=53 => "复合式火灾探测器",
        61 => "紫外火焰探测器",
        62 => "红外火焰探测器",
        69 => "感光火灾探测器",
        74 => "气体探测器",
        78 => "图像摄像方式火灾探测器",
        79 => "感声火灾探测器",
        81 => "气体灭火控制器",
        84..=88 => "模块",
        91 => "消防水泵",
        92 => "消防水箱",
        95 => "喷淋泵",
        96 => "水流指示器",
        97 => "信号阀",
        98 => "报警阀",
        99 => "压力开关",
        101..=106 => "阀门/防火门/防火阀",
        111..=118 => "防排烟/卷帘/门监控",
        121 => "警报装置",
        _ => return None,
    })
}

/// The name and unit of an analog type, and the scale of its raw GB/T 26875.3 integer
/// (value = raw × scale).
pub fn analog_type(code: u8) -> Option<(&'static str, &'static str, f64)> {
    Some(match code {
        1 => ("事件计数", "", 1.0),
        2 => ("高度", "m", 0.01),
        3 => ("温度", "°C", 0.1),
        4 => ("压力", "MPa", 0.1),
        5 => ("压力", "kPa", 1.0),
        6 => ("气体浓度", "%LEL", 0.1),
        7 => ("时间", "s", 1.0),
        8 => ("电压", "V", 0.1),
        9 => ("电流", "A", 0.1),
        10 => ("流量", "L/s", 0.1),
        11 => ("风量", "m³/min", 0.1),
        12 => ("风速", "m/s", 1.0),
        _ => return None,
    })
}

/// The unit of an analog type, or `""` when unknown.
pub fn analog_unit(code: u8) -> &'static str {
    analog_type(code).map(|(_, unit, _)| unit).unwrap_or("")
}
