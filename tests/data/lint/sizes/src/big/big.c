/* a file one line over the limit, of short functions */

int f0(void)
{
    return 0;
}

int f1(void)
{
    return 1;
}

int f2(void)
{
    return 2;
}

int f3(void)
{
    return 3;
}

int f4(void)
{
    return 4;
}

int f5(void)
{
    return 5;
}

int f6(void)
{
    return 6;
}

int f7(void)
{
    return 7;
}

int f8(void)
{
    return 8;
}

int f9(void)
{
    return 9;
}

int f10(void)
{
    return 10;
}

int f11(void)
{
    return 11;
}

int f12(void)
{
    return 12;
}

int f13(void)
{
    return 13;
}

int f14(void)
{
    return 14;
}

int f15(void)
{
    return 15;
}

int f16(void)
{
    return 16;
}

int f17(void)
{
    return 17;
}

int f18(void)
{
    return 18;
}

int f19(void)
{
    return 19;
}

int f20(void)
{
    return 20;
}

int f21(void)
{
    return 21;
}

int f22(void)
{
    return 22;
}

int f23(void)
{
    return 23;
}

int f24(void)
{
    return 24;
}

int f25(void)
{
    return 25;
}

int f26(void)
{
    return 26;
}

int f27(void)
{
    return 27;
}

int f28(void)
{
    return 28;
}

int f29(void)
{
    return 29;
}

int f30(void)
{
    return 30;
}

int f31(void)
{
    return 31;
}

int f32(void)
{
    return 32;
}

int f33(void)
{
    return 33;
}

int f34(void)
{
    return 34;
}

int f35(void)
{
    return 35;
}

int f36(void)
{
    return 36;
}

int f37(void)
{
    return 37;
}

int f38(void)
{
    return 38;
}

int f39(void)
{
    return 39;
}

int f40(void)
{
    return 40;
}

int f41(void)
{
    return 41;
}

int f42(void)
{
    return 42;
}

int f43(void)
{
    return 43;
}

int f44(void)
{
    return 44;
}

int f45(void)
{
    return 45;
}

int f46(void)
{
    return 46;
}

int f47(void)
{
    return 47;
}

int f48(void)
{
    return 48;
}

int f49(void)
{
    return 49;
}

int f50(void)
{
    return 50;
}

int f51(void)
{
    return 51;
}

int f52(void)
{
    return 52;
}

int f53(void)
{
    return 53;
}

int f54(void)
{
    return 54;
}

int f55(void)
{
    return 55;
}

int f56(void)
{
    return 56;
}

int f57(void)
{
    return 57;
}

int f58(void)
{
    return 58;
}

int f59(void)
{
    return 59;
}

int f60(void)
{
    return 60;
}

int f61(void)
{
    return 61;
}

int f62(void)
{
    return 62;
}

int f63(void)
{
    return 63;
}

int f64(void)
{
    return 64;
}

int f65(void)
{
    return 65;
}

int f66(void)
{
    return 66;
}

int f67(void)
{
    return 67;
}

int f68(void)
{
    return 68;
}

int f69(void)
{
    return 69;
}

int f70(void)
{
    return 70;
}

int f71(void)
{
    return 71;
}

int f72(void)
{
    return 72;
}

int f73(void)
{
    return 73;
}

int f74(void)
{
    return 74;
}

int f75(void)
{
    return 75;
}

int f76(void)
{
    return 76;
}

int f77(void)
{
    return 77;
}

int f78(void)
{
    return 78;
}

int f79(void)
{
    return 79;
}

int f80(void)
{
    return 80;
}

int f81(void)
{
    return 81;
}

int f82(void)
{
    return 82;
}

int f83(void)
{
    return 83;
}

int f84(void)
{
    return 84;
}

int f85(void)
{
    return 85;
}

int f86(void)
{
    return 86;
}

int f87(void)
{
    return 87;
}

int f88(void)
{
    return 88;
}

int f89(void)
{
    return 89;
}

int f90(void)
{
    return 90;
}

int f91(void)
{
    return 91;
}

int f92(void)
{
    return 92;
}

int f93(void)
{
    return 93;
}

int f94(void)
{
    return 94;
}

int f95(void)
{
    return 95;
}

int f96(void)
{
    return 96;
}

int f97(void)
{
    return 97;
}

int f98(void)
{
    return 98;
}

int f99(void)
{
    return 99;
}

int f100(void)
{
    return 100;
}

int f101(void)
{
    return 101;
}

int f102(void)
{
    return 102;
}

int f103(void)
{
    return 103;
}

int f104(void)
{
    return 104;
}

int f105(void)
{
    return 105;
}

int f106(void)
{
    return 106;
}

int f107(void)
{
    return 107;
}

int f108(void)
{
    return 108;
}

int f109(void)
{
    return 109;
}

int f110(void)
{
    return 110;
}

int f111(void)
{
    return 111;
}

int f112(void)
{
    return 112;
}

int f113(void)
{
    return 113;
}

int f114(void)
{
    return 114;
}

int f115(void)
{
    return 115;
}

int f116(void)
{
    return 116;
}

int f117(void)
{
    return 117;
}

int f118(void)
{
    return 118;
}

int f119(void)
{
    return 119;
}

int f120(void)
{
    return 120;
}

int f121(void)
{
    return 121;
}

int f122(void)
{
    return 122;
}

int f123(void)
{
    return 123;
}

int f124(void)
{
    return 124;
}

int f125(void)
{
    return 125;
}

int f126(void)
{
    return 126;
}

int f127(void)
{
    return 127;
}

int f128(void)
{
    return 128;
}

int f129(void)
{
    return 129;
}

int f130(void)
{
    return 130;
}

int f131(void)
{
    return 131;
}

int f132(void)
{
    return 132;
}

int f133(void)
{
    return 133;
}

int f134(void)
{
    return 134;
}

int f135(void)
{
    return 135;
}

int f136(void)
{
    return 136;
}

int f137(void)
{
    return 137;
}

int f138(void)
{
    return 138;
}

int f139(void)
{
    return 139;
}

int f140(void)
{
    return 140;
}

int f141(void)
{
    return 141;
}

int f142(void)
{
    return 142;
}

int f143(void)
{
    return 143;
}

int f144(void)
{
    return 144;
}

int f145(void)
{
    return 145;
}

int f146(void)
{
    return 146;
}

int f147(void)
{
    return 147;
}

int f148(void)
{
    return 148;
}

int f149(void)
{
    return 149;
}

int f150(void)
{
    return 150;
}

int f151(void)
{
    return 151;
}

int f152(void)
{
    return 152;
}

int f153(void)
{
    return 153;
}

int f154(void)
{
    return 154;
}

int f155(void)
{
    return 155;
}

int f156(void)
{
    return 156;
}

int f157(void)
{
    return 157;
}

int f158(void)
{
    return 158;
}

int f159(void)
{
    return 159;
}

int f160(void)
{
    return 160;
}

int f161(void)
{
    return 161;
}

int f162(void)
{
    return 162;
}

int f163(void)
{
    return 163;
}

int f164(void)
{
    return 164;
}

int f165(void)
{
    return 165;
}

int f166(void)
{
    return 166;
}

int f167(void)
{
    return 167;
}

int f168(void)
{
    return 168;
}

int f169(void)
{
    return 169;
}

int f170(void)
{
    return 170;
}

int f171(void)
{
    return 171;
}

int f172(void)
{
    return 172;
}

int f173(void)
{
    return 173;
}

int f174(void)
{
    return 174;
}

int f175(void)
{
    return 175;
}

int f176(void)
{
    return 176;
}

int f177(void)
{
    return 177;
}

int f178(void)
{
    return 178;
}
/* filler */
/* filler */
/* filler */
/* filler */
/* filler */
